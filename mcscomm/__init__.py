"""mcscomm: an ISO 15118-20 EVCC/SECC emulator for the Megawatt Charging System."""

__version__ = "0.1.0"

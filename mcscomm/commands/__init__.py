"""Thin CLI adapters, one module per ``mcscomm`` subcommand (see :mod:`mcscomm.cli`)."""

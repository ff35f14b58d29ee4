"""The ``mcscomm`` command line.

Each subcommand lives in its own module under :mod:`mcscomm.commands`; this file only knows their
names. A command module provides ``HELP: str``, ``configure(parser)`` and ``run(args) -> int`` and
is imported only when that command runs, so ``mcscomm --help`` stays fast and a command whose
optional dependencies are missing does not break the others.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from types import ModuleType

from mcscomm import __version__

#: command name -> (module, one-line help shown by ``mcscomm --help``)
COMMANDS: dict[str, tuple[str, str]] = {
    "session": ("mcscomm.commands.session", "run an EVCC and an SECC in one process over TLS"),
    "secc": ("mcscomm.commands.secc", "run an SECC (charger) server"),
    "evcc": ("mcscomm.commands.evcc", "run one EVCC (truck) session against an SECC"),
    "sdp": ("mcscomm.commands.sdp", "SECC discovery: answer or send SDP requests"),
    "certs": ("mcscomm.commands.certs", "create and inspect the test PKI"),
    "conformance": ("mcscomm.commands.conformance", "run the conformance test catalogue"),
    "fuzz": ("mcscomm.commands.fuzz", "fuzz an SECC or EVCC"),
    "exi": ("mcscomm.commands.exi", "encode and decode ISO 15118-20 EXI"),
    "codec": ("mcscomm.commands.codec", "validate and inspect ISO 15118-20 XML messages"),
    "plot": ("mcscomm.commands.plot", "plot a session trace (needs the 'plot' extra)"),
    "ems": ("mcscomm.commands.ems", "run a depot CSMS/EMS speaking OCPP 2.1"),
}


def _load(name: str) -> ModuleType:
    return importlib.import_module(COMMANDS[name][0])


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser; subcommand modules fill in their own arguments."""
    parser = argparse.ArgumentParser(
        prog="mcscomm",
        description="ISO 15118-20 EVCC/SECC emulator for the Megawatt Charging System",
    )
    parser.add_argument("--version", action="version", version=f"mcscomm {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_module, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mcscomm`` console script."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    top = build_parser()
    ns, rest = top.parse_known_args(args_list)
    if ns.command is None:
        top.print_help()
        return 2
    try:
        module = _load(ns.command)
    except ImportError as exc:
        print(f"mcscomm {ns.command}: not available ({exc})", file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(prog=f"mcscomm {ns.command}", description=module.HELP)
    module.configure(parser)
    args = parser.parse_args(rest)
    level = logging.WARNING if ns.quiet else (logging.DEBUG if ns.verbose > 1 else logging.INFO)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    try:
        code: int = module.run(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # last safety net: commands report their own errors in one line
        if ns.verbose > 1:
            raise
        print(
            f"mcscomm {ns.command}: internal error: {type(exc).__name__}: {exc} "
            "(run with -vv for the traceback)",
            file=sys.stderr,
        )
        return 1
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

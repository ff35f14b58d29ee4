"""Command-line options and helpers shared by `mcscomm session`, `secc` and `evcc`."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from mcscomm.endpoints.setup import (
    AUTHS,
    CONTROLS,
    ENCODINGS,
    EVCC_ENCODINGS,
    PROFILES,
    SECC_AUTHS,
    SECC_CONTROLS,
    SERVICES,
    SessionOptions,
    SetupError,
    offer_list,
)


def host_port(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` for argparse."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    host = host.strip("[]") or "127.0.0.1"
    value = int(port)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range: {value}")
    return host, value


def on_off(text: str) -> bool:
    if text not in ("on", "off"):
        raise argparse.ArgumentTypeError("expected 'on' or 'off'")
    return text == "on"


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def _offer(kind: str) -> Callable[[str], str]:
    """argparse type of ``--secc-control`` / ``--secc-auth`` (validated by setup.offer_list)."""

    def parse(text: str) -> str:
        try:
            offer_list(text, kind)
        except SetupError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return text

    return parse


def add_common(parser: argparse.ArgumentParser, *, evcc: bool, secc: bool) -> None:
    """The options of the side(s) a command runs."""
    if evcc:
        parser.add_argument("--service", choices=SERVICES, default="MCS_BPT", help="energy service")
        parser.add_argument(
            "--control", choices=CONTROLS, default="dynamic", help="control mode (default dynamic)"
        )
        parser.add_argument(
            "--auth", choices=AUTHS, default="pnc", help="authorization (default pnc)"
        )
        parser.add_argument(
            "--truck", default="mcs_7pack", help="truck profile: name or TOML (mcs_7pack)"
        )
        parser.add_argument(
            "--duration",
            type=positive_seconds,
            help="seconds of charge loop before the truck stops (default: until done)",
        )
    if secc:
        parser.add_argument(
            "--charger", default="mcs_1mw_bpt", help="charger profile: name or TOML (mcs_1mw_bpt)"
        )
        parser.add_argument(
            "--scenario",
            default=None,
            help="backend scenario: name or TOML (default depot_peak_shaving, or none when a "
            "CSMS steers with --csms); 'none' for no backend",
        )
        parser.add_argument(
            "--secc-control",
            type=_offer("control"),
            default="both",
            metavar="{" + ",".join(SECC_CONTROLS) + "}",
            help="control modes the SECC offers (default both = scheduled,dynamic; a list such "
            "as dynamic,scheduled sets the order)",
        )
        parser.add_argument(
            "--secc-auth",
            type=_offer("auth"),
            default="both",
            metavar="{" + ",".join(SECC_AUTHS) + "}",
            help="authorization services the SECC offers (default both = pnc,eim; a list such "
            "as eim,pnc sets the order)",
        )
    if secc:
        parser.add_argument(
            "--encoding",
            choices=ENCODINGS,
            default="auto",
            help="wire encoding: exi (ISO 15118-20), xml (reading, debugging) or auto (default: "
            "the charger takes each truck's encoding from its first message"
            + (", the truck speaks EXI)" if evcc else ")"),
        )
    else:
        parser.add_argument(
            "--encoding",
            choices=EVCC_ENCODINGS,
            default="exi",
            help="wire encoding: exi (default, ISO 15118-20) or xml (reading, debugging)",
        )
    parser.add_argument("--profile", choices=PROFILES, default="strict", help="strict or lenient")
    parser.add_argument(
        "--tls", type=on_off, default=True, metavar="{on,off}", help="TLS 1.3 (off: lenient only)"
    )
    parser.add_argument("--trace", type=Path, metavar="FILE", help="write a JSON Lines trace")


def options(args: argparse.Namespace, certs: Path | None) -> SessionOptions:
    scenario = getattr(args, "scenario", None)
    if scenario is None:
        # With --csms the backend steers; a local scenario would fight its profiles.
        scenario = "none" if getattr(args, "csms", None) else "depot_peak_shaving"
    return SessionOptions(
        service=getattr(args, "service", "MCS_BPT"),
        control=getattr(args, "control", "dynamic"),
        auth=getattr(args, "auth", "pnc"),
        truck=getattr(args, "truck", "mcs_7pack"),
        charger=getattr(args, "charger", "mcs_1mw_bpt"),
        scenario=None if scenario in (None, "none") else scenario,
        duration=getattr(args, "duration", None),
        profile=args.profile,
        tls=args.tls,
        pki_dir=certs,
        secc_control=getattr(args, "secc_control", "both"),
        secc_auth=getattr(args, "secc_auth", "both"),
        **encodings(getattr(args, "encoding", "auto")),
    )


def encodings(choice: str) -> dict[str, str]:
    """``--encoding`` as SessionOptions fields: the SECC takes it as is, the EVCC (which speaks
    first and cannot detect) speaks EXI for ``auto``."""
    return {"secc_encoding": choice, "evcc_encoding": "exi" if choice == "auto" else choice}


def human_sink(prefix: str = "") -> Callable[[str], None] | None:
    """Where the per-message human log goes: stdout, unless the user asked for quiet (-q)."""
    if logging.getLogger().getEffectiveLevel() > logging.INFO:
        return None
    write = sys.stdout.write

    def sink(line: str) -> None:
        write(prefix + line + "\n")

    return sink


def fail(command: str, reason: str, code: int = 1) -> int:
    """Print the one-line reason on stderr and return the exit code."""
    print(f"mcscomm {command}: {reason}", file=sys.stderr)
    return code

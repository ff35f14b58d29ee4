"""The ``--csms`` options of ``mcscomm secc`` and ``mcscomm session`` (importable without the
``backend`` extra: ``ocpp``/``websockets`` are imported only when ``--csms`` is used).

Wiring in a command (see docs/backend.md)::

    add_arguments(parser)                                        # in configure()
    factory, unlink = await attach_from_args(args, factory, secc_config)   # before serving
    ...
    await unlink()                                               # when done (flushes events)
"""

from __future__ import annotations

import argparse
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

_log = logging.getLogger("mcscomm.backend")

Factory = Callable[[float], Any]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the OCPP 2.1 backend options."""
    g = parser.add_argument_group("OCPP 2.1 backend (needs the 'backend' extra)")
    g.add_argument(
        "--csms",
        metavar="URL",
        help="connect to a CSMS as an OCPP 2.1 charging station: ws://HOST:PORT/STATION_ID; "
        "the session then runs in real time as the backend steers it",
    )
    g.add_argument(
        "--evses", type=int, default=None, metavar="N", help="EVSEs of the station (default 1)"
    )
    g.add_argument(
        "--csms-offline",
        choices=("hold", "fallback"),
        default="hold",
        help="CSMS outage: keep the last limits for --csms-offline-hold s, then fall back "
        "(hold, default), or fall back at once (fallback); the fallback charges only",
    )
    g.add_argument(
        "--csms-offline-hold",
        type=float,
        default=600.0,
        metavar="S",
        help="how long 'hold' keeps the last limits (default 600 s)",
    )
    g.add_argument(
        "--csms-fallback-kw",
        type=float,
        default=None,
        metavar="KW",
        help="fallback charge limit (default: the charger's rating); never discharges",
    )
    g.add_argument(
        "--meter-interval",
        type=float,
        default=10.0,
        metavar="S",
        help="TransactionEvent meter values every S seconds (default 10)",
    )


def station_config(args: argparse.Namespace, charger_limits: Any = None, evses: int = 1) -> Any:
    """A :class:`~mcscomm.backend.station.StationConfig` from the options."""
    from mcscomm.backend.station import OfflinePolicy, StationConfig

    fb = getattr(args, "csms_fallback_kw", None)
    return StationConfig(
        url=args.csms,
        evse_count=getattr(args, "evses", None) or evses,
        charger_limits=charger_limits,
        offline_policy=OfflinePolicy(getattr(args, "csms_offline", "hold")),
        offline_hold_s=getattr(args, "csms_offline_hold", 600.0),
        fallback_limit_w=math.inf if fb is None else fb * 1000.0,
        meter_interval_s=getattr(args, "meter_interval", 10.0),
    )


def check_url(url: str) -> str:
    """The station id of a CSMS URL ``ws[s]://HOST[:PORT]/[PATH/]STATION_ID``; ValueError if bad."""
    from urllib.parse import urlparse

    u = urlparse(url)
    sid = u.path.rstrip("/").rsplit("/", 1)[-1]
    if u.scheme not in ("ws", "wss") or not u.hostname or not sid:
        raise ValueError(f"--csms wants ws://HOST:PORT/STATION_ID (or wss://), got {url!r}")
    return sid


async def _nothing() -> None:
    return None


async def attach_from_args(
    args: argparse.Namespace, factory: Factory, config: Any, *, evses: int = 1
) -> tuple[Factory, Callable[[], Awaitable[None]]]:
    """Without ``--csms``: ``(factory, no-op)``. With it: start the station (waiting up to 10 s
    for the boot, then carrying on offline with events queued) and return the wrapped factory
    and a coroutine function that flushes queued events (<= 5 s) and stops the station.

    Raises ``ValueError`` (a bad URL) or ``ImportError`` (no ``backend`` extra) with a one-line
    reason for the command to print.
    """
    url = getattr(args, "csms", None)
    if not url:
        return factory, _nothing
    check_url(url)
    try:
        from mcscomm.backend.secc_link import attach
        from mcscomm.backend.station import ChargingStation
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ImportError(f"--csms needs the backend extra (ocpp, websockets): {exc}") from exc
    charger = getattr(config, "charger", None)
    station = ChargingStation(
        station_config(args, None if charger is None else charger.limits, evses)
    )
    await station.start()
    if not await station.wait_online(10.0):
        _log.warning("CSMS %s not reachable yet: running offline, events are queued", url)

    async def unlink() -> None:
        await station.drain(5.0)
        await station.close()

    return attach(factory, station), unlink

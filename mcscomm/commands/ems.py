"""``mcscomm ems``: a depot CSMS + energy manager speaking OCPP 2.1 (needs the backend extra)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from mcscomm.endpoints.cli_options import fail, host_port

HELP = (
    "run a depot CSMS/EMS over OCPP 2.1: chargers connect to ws://HOST:PORT/STATION_ID; the "
    "energy manager shares the grid connection: charge overnight, discharge into the evening "
    "peak, keep every truck's departure SoC"
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--listen",
        type=host_port,
        default=("127.0.0.1", 9000),
        metavar="HOST:PORT",
        help="where stations connect (default 127.0.0.1:9000)",
    )
    parser.add_argument(
        "--grid-import-kw",
        type=float,
        default=2000.0,
        help="depot grid connection, import (AC kW, default 2000)",
    )
    parser.add_argument(
        "--grid-export-kw",
        type=float,
        default=1000.0,
        help="depot grid connection, export (AC kW, default 1000)",
    )
    parser.add_argument("--efficiency", type=float, default=0.96, help="AC/DC efficiency")
    parser.add_argument(
        "--start",
        default="16:30",
        metavar="HH:MM",
        help="depot time of day at start (default 16:30)",
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=60.0,
        help="depot seconds per real second (default 60: an evening in minutes)",
    )
    parser.add_argument(
        "--peak",
        default="17:00-20:00",
        metavar="HH:MM-HH:MM",
        help="evening peak: discharge trucks with slack (default 17:00-20:00)",
    )
    parser.add_argument(
        "--night",
        default="22:00-06:00",
        metavar="HH:MM-HH:MM",
        help="cheap window: charge with all spare import (default 22:00-06:00)",
    )
    parser.add_argument(
        "--departure",
        default="06:00",
        metavar="HH:MM",
        help="departure when the truck sends none (default 06:00)",
    )
    parser.add_argument(
        "--target-soc",
        type=float,
        default=0.8,
        help="departure SoC when the truck sends none (fraction, default 0.8)",
    )
    parser.add_argument(
        "--interval", type=float, default=2.0, help="control interval in real seconds (default 2)"
    )
    parser.add_argument(
        "--heartbeat", type=int, default=60, help="heartbeat interval given at boot (s)"
    )
    parser.add_argument("--duration", type=float, metavar="S", help="stop after S real seconds")
    parser.add_argument(
        "--demo",
        type=int,
        default=0,
        metavar="N",
        help="also run N in-process stations with a truck each (power layer only)",
    )
    parser.add_argument("--truck", default="mcs_7pack", help="demo truck profile")
    parser.add_argument("--charger", default="mcs_1mw_bpt", help="demo charger profile")


def run(args: argparse.Namespace) -> int:
    try:
        from mcscomm.ems.depot import Depot, DepotConfig
        from mcscomm.ems.manager import DepotLimits, parse_hhmm, parse_window
    except ImportError as exc:  # pragma: no cover - extra not installed
        return fail("ems", f"needs the backend extra (pip install 'mcscomm[backend]'): {exc}", 2)
    try:
        limits = DepotLimits(
            grid_import_w=args.grid_import_kw * 1000.0,
            grid_export_w=args.grid_export_kw * 1000.0,
            efficiency=args.efficiency,
            peak=parse_window(args.peak),
            night=parse_window(args.night),
        )
        cfg = DepotConfig(
            limits=limits,
            start_tod_s=parse_hhmm(args.start),
            time_scale=args.time_scale,
            control_interval_s=args.interval,
            departure_tod_s=parse_hhmm(args.departure),
            target_soc=args.target_soc,
        )
    except ValueError as exc:
        return fail("ems", str(exc), 2)
    if args.time_scale <= 0 or args.interval <= 0 or args.demo < 0:
        return fail("ems", "--time-scale and --interval must be > 0, --demo >= 0", 2)
    if not 0 < args.efficiency <= 1 or args.grid_import_kw < 0 or args.grid_export_kw < 0:
        return fail("ems", "--efficiency must be in (0, 1], grid powers >= 0", 2)
    if not 0 < args.target_soc <= 1 or args.heartbeat < 1:
        return fail("ems", "--target-soc must be in (0, 1], --heartbeat >= 1", 2)
    if args.duration is not None and args.duration <= 0:
        return fail("ems", "--duration must be > 0", 2)
    import logging

    # the server's own connection chatter is not what an EMS user wants to read
    logging.getLogger("websockets").setLevel(logging.WARNING)
    try:
        return asyncio.run(_main(args, cfg, Depot, DepotConfig))
    except OSError as exc:
        return fail("ems", f"cannot listen on {args.listen[0]}:{args.listen[1]}: {exc}", 2)


async def _main(args: argparse.Namespace, cfg: object, depot_cls: type, _: type) -> int:
    from mcscomm.ems.csms import Csms

    csms = Csms(heartbeat_s=args.heartbeat)
    host, port = await csms.start(*args.listen)
    print(f"CSMS/EMS listening on ws://{host}:{port}/<station id> (OCPP 2.1, 2.0.1)", flush=True)
    depot = depot_cls(csms, cfg)
    demo_tasks: list[asyncio.Task[object]] = []
    stations = []
    if args.demo:
        from mcscomm.backend.loopback import LoopbackSession
        from mcscomm.backend.station import ChargingStation, StationConfig
        from mcscomm.power.profiles import ProfileError, load_charger, load_truck

        try:
            charger, truck = load_charger(args.charger), load_truck(args.truck)
        except ProfileError as exc:
            await csms.stop()
            return fail("ems", str(exc), 2)
        for k in range(args.demo):
            cfg_k = StationConfig(
                csms.url(f"DEMO{k + 1}"),
                charger_limits=charger.limits,
                meter_interval_s=args.interval / 2,
            )
            st = ChargingStation(cfg_k)
            await st.start()
            stations.append(st)
            soc = 0.35 + 0.15 * (k % 4)
            sess = LoopbackSession(
                charger, truck, initial_soc=min(soc, 0.9), time_scale=args.time_scale
            )
            demo_tasks.append(asyncio.create_task(sess.run(st)))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    runner = asyncio.create_task(depot.run(args.duration, echo=lambda s: print(s, flush=True)))
    waiter = asyncio.create_task(stop.wait())
    await asyncio.wait({runner, waiter}, return_when=asyncio.FIRST_COMPLETED)
    for t in (runner, waiter, *demo_tasks):
        t.cancel()
    for t in (runner, waiter, *demo_tasks):
        with contextlib.suppress(BaseException):
            await t
    for st in stations:
        await st.close()
    await csms.stop()
    n = len(csms.transactions)
    print(f"EMS done: {len(csms.stations)} stations, {n} transactions", flush=True)
    sys.stdout.flush()
    return 0

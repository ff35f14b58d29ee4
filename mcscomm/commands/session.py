"""``mcscomm session``: an EVCC and an SECC in one process over loopback TLS (virtual time)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
from pathlib import Path

from mcscomm.backend.cli import add_arguments as add_csms_arguments
from mcscomm.backend.cli import attach_from_args
from mcscomm.endpoints.cli_options import add_common, fail, human_sink, options

HELP = (
    "run an EVCC (truck) and an SECC (charger) in one process over loopback TLS 1.3; "
    "defaults: MCS_BPT, dynamic control, PnC, mcs_7pack truck, mcs_1mw_bpt charger, "
    "depot_peak_shaving backend, EXI on the wire, virtual time"
)


def configure(parser: argparse.ArgumentParser) -> None:
    add_common(parser, evcc=True, secc=True)
    parser.add_argument(
        "--realtime", action="store_true", help="run in wall-clock time instead of virtual time"
    )
    parser.add_argument(
        "--certs",
        type=Path,
        metavar="DIR",
        help="PKI directory (created on first use; default: the per-user mcscomm PKI)",
    )
    add_csms_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from mcscomm.endpoints.pair import PairResult, run_pair
    from mcscomm.endpoints.setup import (
        SetupError,
        evcc_config,
        evcc_connection,
        load_pki,
        message_renderer,
        prepare_codecs,
        scenario_truck,
        secc_config,
        secc_factory,
        session_duration,
        tls_contexts,
    )
    from mcscomm.trace import SessionRecorder, TraceWriter

    opts = options(args, args.certs)
    try:
        opts.check()
        opts = dataclasses.replace(opts, duration=session_duration(opts))
        manifest = load_pki(opts)
        server_ssl, client_ssl = tls_contexts(manifest) if opts.tls else (None, None)
        secc_cfg = secc_config(opts, manifest)
        evcc_cfg = evcc_config(opts, manifest, **scenario_truck(opts))
        prepare_codecs(opts.secc_encoding, opts.evcc_encoding)
    except SetupError as exc:
        return fail("session", str(exc), 2)
    writer = None
    if args.trace is not None:
        try:
            writer = TraceWriter(args.trace)
        except OSError as exc:
            return fail("session", f"cannot write the trace: {exc}", 2)
    human = human_sink()
    recorder = SessionRecorder(writer=writer, human=human, render=message_renderer)
    # A CSMS steers in wall-clock time, so --csms implies real time.
    realtime = args.realtime or bool(args.csms)

    async def pair() -> PairResult:
        try:
            factory, unlink = await attach_from_args(
                args, secc_factory(secc_cfg, tls=opts.tls, encoding=opts.secc_encoding), secc_cfg
            )
        except (ValueError, ImportError) as exc:  # a bad --csms URL, or no backend extra
            raise SetupError(str(exc)) from exc
        try:
            return await run_pair(
                factory,
                # made when connected, at the pair clock's now (Unix time in real time)
                lambda now: evcc_connection(
                    evcc_cfg, now=now, tls=opts.tls, encoding=opts.evcc_encoding
                ),
                server_ssl=server_ssl,
                client_ssl=client_ssl,
                virtual=not realtime,
                recorder=recorder,
            )
        finally:
            await unlink()

    try:
        result = asyncio.run(pair())
    except SetupError as exc:
        return fail("session", str(exc), 2)
    finally:
        if writer is not None:
            writer.close()
    if human is None:
        print(result.summary.line())
    clock = "s" if realtime else "s of virtual time"
    print(f"session took {result.wall_s:.2f} s wall clock for {result.clock_s:.1f} {clock}")
    if args.trace is not None:
        print(f"trace: {args.trace}")
    sys.stdout.flush()
    if not result.ok:
        secc = result.secc
        reason = result.evcc.reason if not result.evcc.ok or secc is None else secc.reason
        return fail("session", f"session failed: {reason}")
    return 0

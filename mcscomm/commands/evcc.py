"""``mcscomm evcc``: run one truck session against an SECC; exit 0 on success."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from mcscomm.endpoints.cli_options import add_common, fail, host_port, human_sink, options

HELP = "run one EVCC (truck) session against an SECC (given address or SDP discovery)"


def configure(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--connect", type=host_port, metavar="HOST:PORT", help="the SECC's address")
    where.add_argument(
        "--discover", action="store_true", help="find the SECC with SDP (see --sdp-target)"
    )
    parser.add_argument(
        "--sdp-target",
        type=host_port,
        action="append",
        default=[],
        metavar="HOST:PORT",
        help="send SDP requests (also) to this UDP address; repeatable",
    )
    parser.add_argument("--interface", metavar="IF", help="multicast SDP to ff02::1 on IF")
    parser.add_argument(
        "--certs", type=Path, metavar="DIR", help="PKI directory (created on first use)"
    )
    add_common(parser, evcc=True, secc=False)


def run(args: argparse.Namespace) -> int:
    from mcscomm.endpoints.clock import RealClock
    from mcscomm.endpoints.evcc_client import discover, run_evcc
    from mcscomm.endpoints.setup import (
        SetupError,
        evcc_config,
        evcc_connection,
        load_pki,
        message_renderer,
        prepare_codecs,
        tls_contexts,
    )
    from mcscomm.trace import SessionRecorder, TraceWriter

    opts = options(args, args.certs)
    try:
        opts.check()
        manifest = load_pki(opts)
        client_ssl = tls_contexts(manifest)[1] if opts.tls else None
        config = evcc_config(opts, manifest)
        prepare_codecs(opts.evcc_encoding)
    except SetupError as exc:
        return fail("evcc", str(exc), 2)
    if args.discover and not args.sdp_target and not args.interface:
        return fail("evcc", "--discover needs --interface IF and/or --sdp-target HOST:PORT", 2)

    async def main() -> int:
        if args.discover:
            try:
                host, port, secured = await discover(
                    interface=args.interface, targets=args.sdp_target, tls=opts.tls
                )
            except LookupError as exc:
                return fail("evcc", str(exc))
            if secured != opts.tls:
                return fail(
                    "evcc", f"the SECC at {host}:{port} offers TLS={secured}, not {opts.tls}"
                )
            print(f"SDP: SECC at {host}:{port} ({'TLS' if secured else 'TCP'})")
        else:
            host, port = args.connect
        writer = TraceWriter(args.trace) if args.trace is not None else None
        # Real time read as Unix time: the truck's TimeStamps and TimeAnchors are real.
        clock = RealClock(unix=True)
        recorder = SessionRecorder(
            writer=writer, human=human_sink(), origin=clock.now(), render=message_renderer
        )
        try:
            result = await run_evcc(
                lambda now: evcc_connection(
                    config, now=now, tls=opts.tls, encoding=opts.evcc_encoding
                ),
                host=host,
                port=port,
                ssl_context=client_ssl,
                clock=clock,
                recorder=recorder,
            )
        finally:
            if writer is not None:
                writer.close()
        if recorder.human is None:
            print(result.summary.line())
        if not result.ok:
            return fail("evcc", f"session failed: {result.outcome.reason}")
        return 0

    return asyncio.run(main())

"""``mcscomm secc``: an SECC (charger) server for many concurrent trucks, optionally with SDP."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import ssl
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from mcscomm.backend.cli import add_arguments as add_csms_arguments
from mcscomm.backend.cli import attach_from_args
from mcscomm.endpoints.cli_options import add_common, fail, host_port, human_sink, options

if TYPE_CHECKING:
    from mcscomm.endpoints.driver import SansIoConnection

HELP = "run an SECC (charger) server over TLS 1.3 (and optionally an SDP responder)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--listen",
        type=host_port,
        default=("127.0.0.1", 0),
        metavar="HOST:PORT",
        help="where to accept trucks (default 127.0.0.1:0, an ephemeral port)",
    )
    parser.add_argument(
        "--certs", type=Path, metavar="DIR", help="PKI directory (created on first use)"
    )
    add_common(parser, evcc=False, secc=True)
    parser.add_argument(
        "--sdp",
        type=host_port,
        metavar="HOST:PORT",
        help="also answer SDP on this UDP address (e.g. [::]:15118)",
    )
    parser.add_argument("--sdp-interface", metavar="IF", help="join ff02::1 on this interface")
    parser.add_argument(
        "--max-connections", type=int, default=1024, help="concurrent sessions (default 1024)"
    )
    parser.add_argument(
        "--sessions",
        type=int,
        metavar="N",
        help="exit after N sessions (exit code 0 only if all succeeded)",
    )
    add_csms_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from mcscomm.endpoints.setup import (
        SetupError,
        load_pki,
        prepare_codecs,
        secc_config,
        secc_factory,
        tls_contexts,
    )

    opts = options(args, args.certs)
    try:
        opts.check()
        manifest = load_pki(opts)
        server_ssl = tls_contexts(manifest)[0] if opts.tls else None
        config = secc_config(opts, manifest)
        prepare_codecs(opts.secc_encoding)
    except SetupError as exc:
        return fail("secc", str(exc), 2)
    try:
        return asyncio.run(
            _serve(
                args,
                secc_factory(config, tls=opts.tls, encoding=opts.secc_encoding),
                server_ssl,
                config,
            )
        )
    except SetupError as exc:
        return fail("secc", str(exc), 2)
    except OSError as exc:
        return fail("secc", f"cannot listen on {args.listen[0]}:{args.listen[1]}: {exc}", 2)


async def _serve(
    args: argparse.Namespace,
    factory: Callable[[float], SansIoConnection],
    server_ssl: ssl.SSLContext | None,
    config: object,
) -> int:
    from mcscomm.endpoints.driver import SessionOutcome
    from mcscomm.endpoints.limits import Limits
    from mcscomm.endpoints.secc_server import SeccServer
    from mcscomm.endpoints.setup import message_renderer
    from mcscomm.trace import SessionRecorder, TraceWriter

    writer = TraceWriter(args.trace) if args.trace is not None else None
    finished = asyncio.Event()
    outcomes: list[SessionOutcome] = []

    def recorder(label: str, origin: float) -> SessionRecorder:
        return SessionRecorder(
            writer=writer,
            human=human_sink(f"[{label}] "),
            origin=origin,
            label=label,
            render=message_renderer,
        )

    def ended(outcome: SessionOutcome, rec: SessionRecorder) -> None:
        summary = rec.finish(outcome.result, outcome.reason)
        if rec.human is None:
            print(f"[{outcome.label}] {summary.line()}", flush=True)
        outcomes.append(outcome)
        if args.sessions is not None and len(outcomes) >= args.sessions:
            finished.set()

    from mcscomm.endpoints.setup import SetupError

    try:
        factory, unlink = await attach_from_args(args, factory, config)
    except (ValueError, ImportError) as exc:  # a bad --csms URL, or no backend extra
        raise SetupError(str(exc)) from exc
    server = SeccServer(
        factory,
        ssl_context=server_ssl,
        limits=Limits(max_connections=args.max_connections),
        recorder_factory=recorder,
        on_session_end=ended,
    )
    host, port = await server.start(*args.listen)
    shown = f"[{host}]" if ":" in host else host
    wire = {"auto": "EXI or XML, per truck", "exi": "EXI", "xml": "XML"}[args.encoding]
    print(f"SECC listening on {shown}:{port} ({'TLS 1.3' if server_ssl else 'plain TCP'}, {wire})")
    if args.sdp is not None:
        from mcscomm import sdp

        security = sdp.Security.TLS if server_ssl else sdp.Security.NONE
        try:
            responder = sdp.SdpServer(
                (host, port), security, listen=args.sdp, interface=args.sdp_interface
            )
            await responder.start()
        except (ValueError, OSError) as exc:
            # e.g. --listen [::]:P cannot be announced: SDP needs a concrete address.
            await server.close()
            return fail("secc", f"cannot answer SDP on {args.sdp[0]}:{args.sdp[1]}: {exc}", 2)
        server.attach_sdp(responder)
        print(f"SDP answering on {args.sdp[0]}:{responder.sockname[1]}")
    sys.stdout.flush()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, finished.set)
    # SIGUSR1 restarts the response-time statistics (e.g. once a load test reaches steady state).
    with contextlib.suppress(NotImplementedError, RuntimeError, AttributeError):
        loop.add_signal_handler(signal.SIGUSR1, server.stats.response_times.clear)
    try:
        await finished.wait()
    finally:
        await server.close(drain=2.0)
        await unlink()
        if writer is not None:
            writer.close()
    failed = [o for o in outcomes if not o.ok]
    stats = server.stats
    p50, p99 = stats.response_percentile(0.5), stats.response_percentile(0.99)
    timing = (
        ""
        if p50 is None or p99 is None
        else f"; response time p50 {p50 * 1e3:.2f} ms, p99 {p99 * 1e3:.2f} ms"
        f" over {len(stats.response_times)} requests"
    )
    print(f"SECC served {len(outcomes)} sessions, {len(failed)} failed{timing}", flush=True)
    if args.sessions is not None and failed:
        return fail("secc", f"{len(failed)} of {len(outcomes)} sessions failed: {failed[0].reason}")
    return 0

"""``mcscomm sdp``: answer SDP requests as an SECC, or discover an SECC as an EVCC."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from mcscomm.sdp import (
    SDP_MAX_REQUESTS,
    SDP_PORT,
    SDP_WAIT,
    SdpClient,
    SdpError,
    SdpServer,
    Security,
)

HELP = "SECC discovery (SDP): answer requests as an SECC, or find an SECC as an EVCC"


def host_port(text: str) -> tuple[str, int]:
    """Parse ``HOST:PORT``, ``[IPV6]:PORT`` or ``[IPV6%IF]:PORT`` (argparse type)."""
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise argparse.ArgumentTypeError(f"expected [IPV6]:PORT, got {text!r}")
        port_text = rest[1:]
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or ":" in host:
            raise argparse.ArgumentTypeError(
                f"expected HOST:PORT (write IPv6 as [ADDR]:PORT), got {text!r}"
            )
    try:
        port = int(port_text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad port in {text!r}") from None
    if not host or not 0 <= port <= 0xFFFF:
        raise argparse.ArgumentTypeError(f"bad host or port in {text!r}")
    return host, port


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    serve = sub.add_parser("serve", help="answer SDP requests (SECC side)")
    serve.add_argument(
        "--listen",
        type=host_port,
        default=("::", SDP_PORT),
        metavar="HOST:PORT",
        help=f"UDP address to listen on (default [::]:{SDP_PORT})",
    )
    serve.add_argument(
        "--announce",
        type=host_port,
        required=True,
        metavar="HOST:PORT",
        help="address and TCP port of the SECC put in every response (IPv4 is sent IPv4-mapped)",
    )
    serve.add_argument(
        "--interface", metavar="IF", help="join ff02::1 on this interface (IPv6 listen only)"
    )
    serve.add_argument("--no-tls", action="store_true", help="offer no TLS (security 0x10)")
    serve.add_argument(
        "--duration",
        type=float,
        metavar="S",
        help="stop after S seconds (default: until interrupted)",
    )

    find = sub.add_parser("discover", help="send SDP requests and print the SECC found")
    find.add_argument(
        "--target",
        type=host_port,
        action="append",
        default=[],
        metavar="HOST:PORT",
        help="send unicast to this SDP server (repeatable)",
    )
    find.add_argument("--interface", metavar="IF", help="send multicast to ff02::1 on IF")
    find.add_argument(
        "--multicast-port", type=int, default=SDP_PORT, help="SDP port for the multicast"
    )
    find.add_argument("--no-tls", action="store_true", help="ask for no TLS (security 0x10)")
    find.add_argument(
        "--requests", type=int, default=SDP_MAX_REQUESTS, help="requests before giving up"
    )
    find.add_argument(
        "--wait", type=float, default=SDP_WAIT, help="seconds to wait after each request"
    )
    find.add_argument("--json", action="store_true", help="print the result as JSON")


async def _serve(args: argparse.Namespace) -> int:
    server = SdpServer(
        args.announce,
        Security.NONE if args.no_tls else Security.TLS,
        listen=args.listen,
        interface=args.interface,
    )
    async with server:
        name = server.sockname
        where = f"[{name[0]}]" if ":" in str(name[0]) else str(name[0])
        print(
            f"SDP server on {where}:{name[1]} announcing"
            f" [{server.address}]:{server.port} {server.security.name}",
            flush=True,
        )
        if args.duration is None:
            await server.serve_forever()
        else:
            await asyncio.sleep(args.duration)
    return 0


async def _discover(args: argparse.Namespace) -> int:
    client = SdpClient(
        Security.NONE if args.no_tls else Security.TLS,
        targets=args.target,
        interface=args.interface,
        multicast_port=args.multicast_port,
        max_requests=args.requests,
        wait=args.wait,
    )
    found = await client.discover()
    r = found.response
    if args.json:
        print(
            json.dumps(
                {
                    "host": found.host,
                    "port": found.port,
                    "address": str(r.address),
                    "security": r.security.name,
                    "transport": r.transport.name,
                    "from": [found.peer[0], found.peer[1]],
                    "requests": client.requests_sent,
                }
            )
        )
    else:
        host = f"[{found.host}]" if ":" in found.host else found.host
        print(
            f"SECC {host}:{found.port} security={r.security.name} transport={r.transport.name}"
            f" (answered by {found.peer[0]} after {client.requests_sent} request(s))"
        )
    return 0


def _usage_error(args: argparse.Namespace) -> str | None:
    """What is wrong with the options themselves (exit 2), before any socket is opened."""
    if args.action == "serve":
        if args.duration is not None and args.duration <= 0:
            return "--duration must be > 0"
        return None
    if not args.target and args.interface is None:
        return "give --target HOST:PORT or --interface IF"
    if args.requests < 1 or args.wait <= 0:
        return "--requests must be >= 1 and --wait > 0"
    if not 0 < args.multicast_port <= 0xFFFF:
        return f"--multicast-port out of range: {args.multicast_port}"
    return None


def run(args: argparse.Namespace) -> int:
    problem = _usage_error(args)
    if problem is not None:
        print(f"mcscomm sdp {args.action}: {problem}", file=sys.stderr)
        return 2
    try:
        if args.action == "serve":
            return asyncio.run(_serve(args))
        return asyncio.run(_discover(args))
    except ValueError as exc:  # e.g. an --announce host that is not an IP address
        print(f"mcscomm sdp {args.action}: {exc}", file=sys.stderr)
        return 2
    except (SdpError, OSError) as exc:
        print(f"mcscomm sdp {args.action}: {exc}", file=sys.stderr)
        return 1

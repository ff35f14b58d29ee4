"""``mcscomm fuzz``: stateful, schema-aware fuzzing of an SECC or EVCC; ``fuzz replay FILE``.

Examples::

    mcscomm fuzz --target secc --in-process --seed 1 --cases 20000 --report out.json
    mcscomm fuzz --target evcc --in-process --seed 7 --cases 5000 --states CHARGE_LOOP
    mcscomm fuzz --target secc --connect 127.0.0.1:15118 --tls --pki ./pki --cases 2000
    mcscomm fuzz replay findings/crash-exception-1-62.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from mcscomm.security.errors import SecurityError
from mcscomm.trace import TraceError

if TYPE_CHECKING:
    import ssl

    from mcscomm.fuzz.campaign import Campaign
    from mcscomm.fuzz.reference import RefMsg, SessionSetup

HELP = "fuzz an SECC or EVCC (stateful, schema-aware, reproducible); 'fuzz replay FILE'"

FAMILIES = ("value", "doc", "v2gtp", "seq")
#: Mutators that only make sense in virtual time (they wait for 60 s timeouts or stall
#: deliberately); left out over a socket unless --slow.
SLOW_MUTATORS = ("seq.late", "v2gtp.slow", "v2gtp.length_long", "v2gtp.length_max")


#: What a bad option or file (profile, corpus trace, PKI, address) raises while the campaign is
#: built: reported as a usage error, never a traceback.
_SETUP_ERRORS: tuple[type[Exception], ...] = (ValueError, OSError, TraceError, SecurityError)
#: ... and a finding's recorded options may lack a key or hold a value of the wrong type
_REPLAY_ERRORS: tuple[type[Exception], ...] = (*_SETUP_ERRORS, KeyError, TypeError)


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def _csv(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip())


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--target",
        choices=("secc", "evcc"),
        default="secc",
        help="what to fuzz: secc (we play the EVCC) or evcc (we play the SECC)",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--connect",
        type=_host_port,
        metavar="HOST:PORT",
        help="fuzz the SECC listening there (new connection per case)",
    )
    where.add_argument(
        "--listen",
        type=_host_port,
        metavar="HOST:PORT",
        help="fuzz EVCCs that connect to us there (--target evcc; one connection per case)",
    )
    where.add_argument(
        "--in-process",
        action="store_true",
        help="fuzz our own endpoint through the sans-IO core (default)",
    )
    parser.add_argument("--seed", type=int, default=1, help="campaign seed (default 1)")
    parser.add_argument("--cases", type=int, default=1000, help="number of cases (default 1000)")
    parser.add_argument("--start", type=int, default=0, help="first case index (default 0)")
    parser.add_argument("--report", type=Path, help="write the JSON report here")
    parser.add_argument(
        "--findings",
        type=Path,
        default=Path("fuzz-findings"),
        help="directory for reproducer files (default ./fuzz-findings)",
    )
    parser.add_argument("--states", type=_csv, help="comma-separated states to fuzz in")
    parser.add_argument(
        "--mutators",
        type=_csv,
        default=FAMILIES,
        help="mutator families: value,doc,v2gtp,seq (default all)",
    )
    parser.add_argument(
        "--corpus",
        type=Path,
        action="append",
        default=[],
        help="session trace (JSONL) whose documents seed the mutators",
    )
    parser.add_argument("--no-minimize", action="store_true", help="do not minimise findings")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--time-limit", type=float, help="stop after this many seconds")
    parser.add_argument(
        "--duration",
        type=float,
        default=2.0,
        help="charge-loop seconds of the reference session (default 2)",
    )
    parser.add_argument("--charger", default="mcs_1mw_bpt", help="charger profile (reference)")
    parser.add_argument("--truck", default="mcs_7pack", help="truck profile (reference)")
    parser.add_argument("--tls", action="store_true", help="--connect over TLS 1.3")
    parser.add_argument(
        "--pki",
        type=Path,
        help="PKI directory (mcscomm certs): TLS trust for --connect --tls; in-process, "
        "sessions use PnC with signed messages (signature tampering applies)",
    )
    parser.add_argument(
        "--pid",
        type=int,
        help="PID of a local target process: watch its memory and sockets, notice its exit",
    )
    parser.add_argument(
        "--slow",
        action="store_true",
        help="over --connect, also play mutators that wait on real timeouts",
    )
    parser.add_argument(
        "--planted",
        choices=(
            "crash-on-field",
            "hang-in-state",
            "sequence-error",
            "exceed-limit",
            "leak-memory",
        ),
        help="fuzz a deliberately broken in-process SECC (self-test)",
    )
    sub = parser.add_subparsers(dest="fuzz_command")
    rp = sub.add_parser("replay", help="replay a reproducer file")
    rp.add_argument("file", type=Path, help="finding JSON written by a campaign")
    rp.add_argument("--original", action="store_true", help="replay the unminimised case")
    rp.add_argument(
        "--connect",
        dest="replay_connect",
        type=_host_port,
        metavar="HOST:PORT",
        help="replay against this SECC instead of the recorded target",
    )
    rp.add_argument("--pki", dest="replay_pki", type=Path, help="PKI for a TLS finding")


def run(args: argparse.Namespace) -> int:
    if getattr(args, "fuzz_command", None) == "replay":
        return _replay(args)
    if args.cases < 0 or args.start < 0:
        print("mcscomm fuzz: --cases and --start must be >= 0", file=sys.stderr)
        return 2
    if args.duration <= 0 or (args.time_limit is not None and args.time_limit <= 0):
        print("mcscomm fuzz: --duration and --time-limit must be > 0", file=sys.stderr)
        return 2
    unknown = set(args.mutators) - set(FAMILIES)
    if unknown:
        print(f"mcscomm fuzz: unknown mutator families {sorted(unknown)}", file=sys.stderr)
        return 2
    try:
        campaign = _campaign(args)
    except _SETUP_ERRORS as exc:
        print(f"mcscomm fuzz: {exc}", file=sys.stderr)
        return 2
    from mcscomm.fuzz.campaign import run_campaign

    report = run_campaign(
        campaign,
        args.seed,
        args.cases,
        start=args.start,
        out_dir=args.findings,
        minimize=not args.no_minimize,
        progress=not args.no_progress and sys.stderr.isatty(),
        time_limit_s=args.time_limit,
        pid=args.pid,
    )
    campaign.close()
    data = report.to_json()
    if args.report is not None:
        try:
            args.report.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        except OSError as exc:
            print(f"mcscomm fuzz: cannot write {args.report}: {exc.strerror}", file=sys.stderr)
            return 2
    print(
        f"{data['cases']} cases in {data['elapsed_s']} s ({data['execs_per_s']} cases/s), "
        f"{len(data['findings'])} findings"
    )
    for f in data["findings"]:
        print(
            f"  {f['kind']}/{f['oracle']}: {f['detail']}  [{f['mutator']} in {f['state']}]"
            + (f" -> {f['file']}" if f["file"] else "")
        )
    return 1 if data["findings"] else 0


def _setup(args: argparse.Namespace) -> SessionSetup:
    from mcscomm.fuzz.reference import SessionSetup

    in_process = args.connect is None and args.listen is None
    pki_dir = str(args.pki) if args.pki is not None and in_process else None
    if pki_dir is not None:
        from mcscomm.security.pki import load_manifest

        # a damaged PKI would only cut the reference session short: refuse it here
        load_manifest(pki_dir).load_all()
    return SessionSetup(
        charger=args.charger, truck=args.truck, duration_s=args.duration, pki_dir=pki_dir
    )


def _campaign(args: argparse.Namespace) -> Campaign:
    from mcscomm.fuzz import campaign as cp
    from mcscomm.fuzz.reference import load_trace

    setup = _setup(args)
    corpus: list[RefMsg] = []
    for path in args.corpus:
        corpus.extend(load_trace(path, args.target))
    skip = () if args.slow else SLOW_MUTATORS
    if args.planted and (args.connect or args.listen):
        raise ValueError("--planted is an in-process SECC")
    if args.connect is None and args.listen is None:
        return cp.in_process(
            args.target,
            setup,
            planted_variant=args.planted,
            states=args.states,
            families=args.mutators,
            corpus=tuple(corpus),
        )
    # Over a socket: --listen means we play the SECC for EVCCs, --connect the EVCC of an SECC.
    serve = args.listen is not None
    if serve and args.target != "evcc":
        raise ValueError("--listen fuzzes EVCCs that connect to us: use --target evcc")
    if not serve and args.target != "secc":
        raise ValueError("--connect fuzzes an SECC; for an EVCC use --listen or --in-process")
    return (cp.listen if serve else cp.network)(
        args.listen if serve else args.connect,
        setup,
        ssl_context=_tls_context(args.pki, secc=serve) if args.tls else None,
        states=args.states,
        families=args.mutators,
        skip=skip,
        corpus=tuple(corpus),
    )


def _tls_context(pki: Path | None, *, secc: bool) -> ssl.SSLContext:
    """Our TLS side from a PKI directory: the SECC chain (``secc``) or the EVCC's V2G root."""
    if pki is None:
        what = "our SECC certificate chain" if secc else "the V2G root the SECC chains to"
        raise ValueError(f"TLS needs --pki DIR ({what})")
    from mcscomm.security.tls import evcc_context, secc_context

    return secc_context(pki) if secc else evcc_context(pki)


def _replay(args: argparse.Namespace) -> int:
    from mcscomm.fuzz import campaign as cp
    from mcscomm.fuzz import replay

    try:
        finding = replay.load(args.file)
    except ValueError as exc:
        print(f"mcscomm fuzz replay: {exc}", file=sys.stderr)
        return 2
    case = finding.case if args.original or finding.minimized is None else finding.minimized
    options = dict(finding.options)
    address = args.replay_connect
    if address is None and options.get("mode") == "network":
        address = _host_port(str(options["address"]))
    try:
        if address is not None:
            tls = _tls_context(args.replay_pki, secc=False) if options.get("tls") else None
            camp = cp.network(address, cp.setup_from(options), ssl_context=tls)
        else:
            camp = cp.from_options(options)
    except _REPLAY_ERRORS as exc:
        print(f"mcscomm fuzz replay: cannot rebuild the target: {exc}", file=sys.stderr)
        return 2
    try:
        verdict = replay.reproduce(case, camp.replay_run, camp.oracle)
    finally:
        camp.close()
    want = finding.verdict
    print(f"finding: {want.kind}/{want.oracle}: {want.detail}")
    print(
        f"case: seed {case.seed} index {case.index}, {case.mutator} in {case.state}, "
        f"{len(case.steps)} steps ({case.prefix_len} prefix)"
    )
    if verdict is None:
        print("replay: not reproduced (the target behaves now)")
        return 1
    print(f"replay: {verdict.kind}/{verdict.oracle}: {verdict.detail}")
    same = verdict.signature == want.signature
    print("reproduced" if same else "different verdict")
    return 0 if same else 1

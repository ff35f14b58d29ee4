"""``mcscomm conformance``: run the ISO 15118-20 conformance catalogue against an SECC or EVCC."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

HELP = "run the conformance test catalogue (JUnit XML, JSON and HTML reports)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sut", choices=("secc", "evcc"), required=True, help="role under test")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--connect", metavar="HOST:PORT", help="an SECC under test listens here")
    where.add_argument("--listen", metavar="HOST:PORT", help="wait here for the EVCC under test")
    where.add_argument(
        "--in-process", action="store_true", help="test our own endpoint of that role (default)"
    )
    parser.add_argument("--pics", metavar="FILE", help="PICS/PIXIT TOML (default: everything)")
    parser.add_argument(
        "--cases", metavar="PATTERN", help="ids: substrings or globs, comma-separated"
    )
    parser.add_argument("--junit", metavar="FILE", help="write JUnit XML here")
    parser.add_argument("--report", metavar="FILE", help="write the JSON report here")
    parser.add_argument("--html", metavar="FILE", help="write the HTML report here")
    parser.add_argument("--pki", metavar="DIR", help="PKI directory (overrides pixit.pki_dir)")
    parser.add_argument(
        "--fault",
        metavar="NAME",
        help="in-process only: run against a deliberately broken variant (see --list-faults)",
    )
    parser.add_argument("--list", action="store_true", help="list the selected cases and exit")
    parser.add_argument("--list-faults", action="store_true", help="list the fault variants")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _fail(message: str) -> int:
    print(f"mcscomm conformance: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from mcscomm.conformance import catalogue, faults
    from mcscomm.conformance.model import Role
    from mcscomm.conformance.pics import Pics, PicsError, load_pics
    from mcscomm.conformance.runner import run as run_cases
    from mcscomm.conformance.sut import launcher, prepare_pkis

    console = Console(stderr=False)
    if args.list_faults:
        for f in faults.FAULTS.values():
            if f.role == args.sut:
                console.print(f"{f.name:32} {f.description}")
        return 0
    try:
        pics = load_pics(args.pics) if args.pics else Pics()
    except PicsError as exc:
        return _fail(str(exc))
    pics = pics.with_role(args.sut)
    role = Role(args.sut)
    cases = catalogue.select(role, args.cases)
    if args.list:
        for c in cases:
            missing = pics.missing(c.pics)
            flag = "n/a " if missing else "    "
            console.print(f"{flag}{c.id}  [dim]{c.purpose}[/dim]")
        console.print(f"{len(cases)} cases")
        return 0
    if not cases:
        return _fail(f"no case matches {args.cases!r}")
    if not (args.junit or args.report or args.html):
        return _fail("give at least one of --junit FILE, --report FILE, --html FILE")
    remote = args.connect or args.listen
    if args.connect and role is not Role.SECC:
        return _fail("--connect tests an SECC; use --listen for an EVCC")
    if args.listen and role is not Role.EVCC:
        return _fail("--listen waits for an EVCC; use --connect for an SECC")
    if args.fault:
        if remote:
            return _fail("--fault only applies to --in-process")
        chosen = faults.FAULTS.get(args.fault)
        if chosen is None or chosen.role != args.sut:
            return _fail(f"unknown {args.sut} fault {args.fault!r} (see --list-faults)")
    try:
        pkis = prepare_pkis(pics, args.pki, create=not remote)
    except Exception as exc:  # PKI problems: one line, not a traceback
        return _fail(f"cannot load the PKI: {exc}")
    if remote and pics.tls and pkis is None:
        return _fail("a TLS SUT needs --pki DIR or pixit.pki_dir")
    try:
        shared = (
            launcher(role, pics, pkis, connect=args.connect, listen=args.listen) if remote else None
        )
    except (OSError, ValueError) as exc:
        return _fail(str(exc))

    def make_sut() -> Any:
        if shared is not None:
            return shared
        return launcher(role, pics, pkis, fault=args.fault)

    mode = (
        f"connect {args.connect}"
        if args.connect
        else f"listen {args.listen}"
        if args.listen
        else "in-process"
    )
    if args.fault:
        mode += f" (fault {args.fault})"
    report = _run_with_progress(console, cases, make_sut, pics, pkis, mode, args.quiet, run_cases)
    if shared is not None:
        shared.close()
    _summary(console, report)
    from mcscomm.conformance import reports

    outputs: list[tuple[str | None, Callable[[], str]]] = [
        (args.junit, lambda: reports.junit_xml(report)),
        (args.report, lambda: reports.json_text(report)),
        (args.html, lambda: reports.html_report(report)),
    ]
    for path, text in outputs:
        if path:
            try:
                Path(path).write_text(text(), encoding="utf-8")
            except OSError as exc:
                return _fail(f"cannot write {path}: {exc.strerror}")
    return 0 if report.ok else 1


def _run_with_progress(
    console: Any,
    cases: Any,
    make_sut: Any,
    pics: Any,
    pkis: Any,
    mode: str,
    quiet: bool,
    run_cases: Any,
) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    if quiet:
        return run_cases(cases, make_sut, pics, pkis, mode=mode)
    with Progress(
        TextColumn("[bold]conformance[/bold]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("", total=len(cases))

        def step(result: Any) -> None:
            progress.update(task, advance=1, description=f"{result.case.id} {result.verdict}")

        return run_cases(cases, make_sut, pics, pkis, mode=mode, progress=step)


def _summary(console: Any, report: Any) -> None:
    from rich.markup import escape
    from rich.table import Table

    from mcscomm.conformance.model import Verdict

    styles = {"pass": "green", "fail": "red", "error": "magenta", "inconc": "yellow", "n/a": "dim"}
    groups: dict[str, dict[str, int]] = {}
    for r in report.results:
        row = groups.setdefault(r.case.group, {str(v): 0 for v in Verdict})
        row[str(r.verdict)] += 1
    table = Table(title=f"{report.pics.name} ({report.role}, {report.mode})")
    table.add_column("group")
    for v in Verdict:
        table.add_column(str(v), justify="right", style=styles[str(v)])
    for g, row in groups.items():
        table.add_row(g, *(str(row[str(v)]) if row[str(v)] else "" for v in Verdict))
    counts = report.counts()
    table.add_row("[bold]total[/bold]", *(f"[bold]{counts[str(v)]}[/bold]" for v in Verdict))
    console.print(table)
    for r in report.results:
        if r.verdict in (Verdict.FAIL, Verdict.ERROR):
            console.print(
                f"[{styles[str(r.verdict)]}]{r.verdict.upper()}[/] {r.case.id}: {escape(r.reason)}",
                soft_wrap=True,
            )
            for e in r.exchanges[-12:]:
                console.print(f"    {e.line()}", markup=False, highlight=False, soft_wrap=True)
    console.print(f"{len(report.results)} cases in {report.duration_s:.2f} s")

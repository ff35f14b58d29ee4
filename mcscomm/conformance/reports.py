"""Reports of a conformance run: JUnit XML (CI), JSON (machines), HTML (people, ITU-T X.294 style).

JUnit mapping (issue 6): ``pass`` -> passed, ``fail`` -> ``<failure>``, ``error`` -> ``<error>``,
``inconc`` -> ``<skipped>`` with the reason; ``n/a`` -> ``<skipped>`` "not applicable" (never
counted as passed).
"""

from __future__ import annotations

import html
import json
import xml.etree.ElementTree as ET
from typing import Any

from mcscomm.conformance.model import CaseResult, Verdict
from mcscomm.conformance.runner import RunReport


def _log_text(result: CaseResult) -> str:
    return "\n".join(e.line() for e in result.exchanges)


def junit_xml(report: RunReport) -> str:
    """The report as a JUnit XML document (one testsuite)."""
    counts = report.counts()
    suite = ET.Element(
        "testsuite",
        {
            "name": f"mcscomm.conformance.{report.role}",
            "tests": str(len(report.results)),
            "failures": str(counts["fail"]),
            "errors": str(counts["error"]),
            "skipped": str(counts["inconc"] + counts["n/a"]),
            "time": f"{report.duration_s:.3f}",
            "timestamp": report.started,
        },
    )
    props = ET.SubElement(suite, "properties")
    for key, value in _identification(report).items():
        ET.SubElement(props, "property", {"name": key, "value": str(value)})
    for r in report.results:
        tc = ET.SubElement(
            suite,
            "testcase",
            {
                "classname": f"conformance.{report.role}.{r.case.group}",
                "name": r.case.id,
                "time": f"{r.duration_s:.3f}",
            },
        )
        if r.verdict is Verdict.FAIL:
            el = ET.SubElement(tc, "failure", {"message": r.reason, "type": "fail"})
            el.text = _log_text(r)
        elif r.verdict is Verdict.ERROR:
            el = ET.SubElement(tc, "error", {"message": r.reason, "type": "error"})
            el.text = _log_text(r)
        elif r.verdict is Verdict.INCONC:
            ET.SubElement(tc, "skipped", {"message": f"inconclusive: {r.reason}"})
        elif r.verdict is Verdict.NOT_APPLICABLE:
            ET.SubElement(tc, "skipped", {"message": f"not applicable: {r.reason}"})
    ET.indent(suite)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"
    )


def _identification(report: RunReport) -> dict[str, Any]:
    p = report.pics
    return {
        "sut.role": str(report.role),
        "sut.name": p.name,
        "sut.version": p.version,
        "sut.vendor": p.vendor,
        "sut.mode": report.mode,
        "sut.address": p.pixit.address or "",
    }


def json_report(report: RunReport) -> dict[str, Any]:
    """The report as plain data (``json.dumps``-able)."""
    p = report.pics
    return {
        "format": "mcscomm-conformance-report/1",
        "sut": _identification(report),
        "pics": {
            "services": list(p.services),
            "control_modes": list(p.control_modes),
            "auth": list(p.auth),
            "tls": p.tls,
            "tls_algorithm": p.tls_algorithm,
            "sdp": p.sdp,
            "certificate_installation": p.certificate_installation,
            "service_renegotiation": p.service_renegotiation,
            "schedule_renegotiation": p.schedule_renegotiation,
            "pause_resume": p.pause_resume,
            "metering_confirmation": p.metering_confirmation,
            "negative_discharge": p.negative_discharge,
        },
        "environment": report.environment,
        "started": report.started,
        "finished": report.finished,
        "duration_s": round(report.duration_s, 3),
        "summary": report.counts(),
        "results": [r.to_dict() for r in report.results],
    }


def json_text(report: RunReport) -> str:
    return json.dumps(json_report(report), indent=2) + "\n"


_COLORS = {
    "pass": "#1a7f37",
    "fail": "#cf222e",
    "error": "#8250df",
    "inconc": "#9a6700",
    "n/a": "#6e7781",
}


def html_report(report: RunReport) -> str:
    """A self-contained HTML test report in the spirit of ITU-T X.294: SUT identification,
    test environment, summary, per-case table, details of every failing case."""
    e = html.escape
    ident = _identification(report)
    counts = report.counts()
    rows = []
    for r in report.results:
        color = _COLORS[str(r.verdict)]
        rows.append(
            "<tr>"
            f"<td><a href='#{e(r.case.id)}'>{e(r.case.id)}</a></td>"
            f"<td>{e(r.case.purpose)}</td><td>{e(r.case.requirement)}</td>"
            f"<td style='color:{color};font-weight:bold'>{e(str(r.verdict))}</td>"
            f"<td>{e(r.reason)}</td><td>{r.duration_s:.3f}</td></tr>"
        )
    details = []
    for r in report.results:
        if r.verdict not in (Verdict.FAIL, Verdict.ERROR, Verdict.INCONC):
            continue
        c = r.case
        details.append(
            f"<h3 id='{e(c.id)}'>{e(c.id)} — {e(str(r.verdict))}</h3>"
            "<table class='kv'>"
            f"<tr><th>Purpose</th><td>{e(c.purpose)}</td></tr>"
            f"<tr><th>Requirement</th><td>{e(c.requirement)}</td></tr>"
            f"<tr><th>PICS</th><td>{e(', '.join(c.pics) or '-')}</td></tr>"
            f"<tr><th>Preconditions</th><td>{e(c.preconditions)}</td></tr>"
            f"<tr><th>Stimulus</th><td>{e(c.stimulus)}</td></tr>"
            f"<tr><th>Expected</th><td>{e(c.expected)}</td></tr>"
            f"<tr><th>Reason</th><td>{e(r.reason)}</td></tr></table>"
            f"<pre>{e(_log_text(r))}</pre>"
        )
    kv = "".join(f"<tr><th>{e(k)}</th><td>{e(str(v))}</td></tr>" for k, v in ident.items())
    env = "".join(
        f"<tr><th>{e(k)}</th><td>{e(str(v))}</td></tr>" for k, v in report.environment.items()
    )
    pics = json_report(report)["pics"]
    pics_rows = "".join(f"<tr><th>{e(k)}</th><td>{e(str(v))}</td></tr>" for k, v in pics.items())
    summary = "".join(
        f"<td style='color:{_COLORS[k]}'><b>{v}</b> {e(k)}</td>" for k, v in counts.items()
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Conformance test report — {e(ident["sut.name"])} ({e(str(report.role))})</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2em;max-width:80em}}
table{{border-collapse:collapse;margin-bottom:1em}} td,th{{border:1px solid #d0d7de;padding:4px 8px;
text-align:left;vertical-align:top}} th{{background:#f6f8fa}} pre{{background:#f6f8fa;padding:8px;
overflow:auto}} .kv th{{width:12em}}
</style></head><body>
<h1>Conformance test report</h1>
<p>ISO 15118-20 (DC / DC_BPT / MCS / MCS_BPT), test system mcscomm; structure after ITU-T X.294
(test report proforma). Started {e(report.started)}, finished {e(report.finished)},
{report.duration_s:.2f} s.</p>
<h2>1. Identification of the system under test</h2><table class="kv">{kv}</table>
<h2>2. Test environment</h2><table class="kv">{env}</table>
<h3>PICS (claimed capabilities)</h3><table class="kv">{pics_rows}</table>
<h2>3. Summary</h2><table><tr>{summary}</tr></table>
<h2>4. Test cases</h2>
<table><tr><th>Id</th><th>Purpose</th><th>Requirement</th><th>Verdict</th><th>Reason</th>
<th>s</th></tr>{"".join(rows)}</table>
<h2>5. Failed, erroneous and inconclusive cases</h2>{"".join(details) or "<p>None.</p>"}
</body></html>
"""

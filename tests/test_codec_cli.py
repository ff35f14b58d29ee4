"""``mcscomm codec`` subcommand."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcscomm.cli import main


def test_example_then_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["codec", "example", "DC_ChargeLoopRes"]) == 0
    doc = capsys.readouterr().out
    assert doc.startswith("<dc:DC_ChargeLoopRes")
    path = tmp_path / "res.xml"
    path.write_text(doc)
    assert main(["codec", "validate", str(path)]) == 0
    assert "valid: DC_ChargeLoopRes (payload type 0x8004)" in capsys.readouterr().out
    assert main(["codec", "validate", "--payload-type", "0x8004", str(path)]) == 0
    assert main(["codec", "validate", "--payload-type", "0x8002", str(path)]) == 1
    assert "UnknownMessage" in capsys.readouterr().err


def test_validate_reports_schema_violation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["codec", "example", "SessionSetupReq"]) == 0
    doc = capsys.readouterr().out.replace("<ns:EVCCID>EXAMPLE", "<ns:EVCCID>" + "x" * 300)
    path = tmp_path / "bad.xml"
    path.write_text(doc)
    assert main(["codec", "validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("invalid: SchemaViolation") and "EVCCID" in err


def test_unknown_message_and_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["codec", "example", "NoSuchReq"]) == 2
    assert main(["codec", "validate", "/nonexistent/file.xml"]) == 2
    assert main(["codec", "list"]) == 0
    assert "supportedAppProtocolReq" in capsys.readouterr().out

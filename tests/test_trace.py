"""Trace records, the human log and the summary (mcscomm.trace)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from mcscomm.session import events as ev
from mcscomm.trace import SessionRecorder, TraceError, TraceWriter, read_trace

LOOP_REQ = (
    b'<DC_ChargeLoopReq xmlns="urn:iso:std:iso:15118:-20:DC"><DisplayParameters>'
    b"<PresentSOC>47</PresentSOC></DisplayParameters><EVPresentVoltage><Exponent>-1</Exponent>"
    b"<Value>8123</Value></EVPresentVoltage></DC_ChargeLoopReq>"
)


def _recorder() -> tuple[SessionRecorder, io.StringIO, list[str]]:
    stream = io.StringIO()
    lines: list[str] = []
    recorder = SessionRecorder(
        writer=TraceWriter(stream), human=lines.append, origin=100.0, primary_side="secc"
    )
    return recorder, stream, lines


def _records(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_message_power_and_event_records_have_the_documented_keys() -> None:
    recorder, stream, lines = _recorder()
    recorder.lifecycle(100.0, "connected", peer="127.0.0.1:5")
    recorder.event(
        ev.MessageReceived(100.5, "evcc->secc", 0x8004, "DC_ChargeLoopReq", LOOP_REQ), "secc"
    )
    recorder.event(
        ev.MessageSent(100.5, "evcc->secc", 0x8004, "DC_ChargeLoopReq", LOOP_REQ), "evcc"
    )
    recorder.event(ev.PowerSample(100.5, 812.3, 1200.0, 974_760.0, 47.0, "charger_power"), "secc")
    recorder.event(ev.TimeoutOccurred(101.0, "V2G_SECC_Sequence_Timeout", "CHARGE_LOOP"), "secc")
    records = _records(stream)
    assert records[0] == {"t": 0.0, "kind": "event", "event": "connected", "peer": "127.0.0.1:5"}
    message = records[1]
    assert message == {
        "t": 0.5,
        "kind": "message",
        "dir": "evcc->secc",
        "payload_type": 0x8004,
        "message": "DC_ChargeLoopReq",
        "xml": LOOP_REQ.decode(),
    }
    assert len([r for r in records if r["kind"] == "message"]) == 1  # the evcc copy is not kept
    power = records[2]
    assert power == {
        "t": 0.5,
        "kind": "power",
        "voltage_v": 812.3,
        "current_a": 1200.0,
        "power_w": 974_760.0,
        "soc": 47.0,
        "binding_limit": "charger_power",
    }
    timeout = records[3]
    assert (
        timeout["event"] == "timeout_occurred" and timeout["timer"] == "V2G_SECC_Sequence_Timeout"
    )
    assert timeout["side"] == "secc"
    # The human log shows the key values of the message and the power sample.
    assert "DC_ChargeLoopReq" in lines[1] and "ev_V=812.3" in lines[1] and "soc=47" in lines[1]
    assert "812.3 V" in lines[2] and "+974.8 kW" in lines[2] and "charger_power" in lines[2]


def test_exi_documents_are_recorded_as_hex() -> None:
    recorder, stream, _ = _recorder()
    recorder.event(
        ev.MessageSent(100.0, "secc->evcc", 0x8002, "SessionSetupRes", b"\x80\x01"), "secc"
    )
    record = _records(stream)[0]
    assert record["exi"] == "8001" and "xml" not in record


def test_summary_integrates_energy_in_both_directions() -> None:
    recorder, stream, lines = _recorder()
    # 1 MW for 36 s = 10 kWh charged, then -0.5 MW for 36 s = 5 kWh discharged.
    recorder.event(ev.PowerSample(100.0, 800.0, 1250.0, 1_000_000.0, 40.0, ""), "secc")
    recorder.event(ev.PowerSample(136.0, 800.0, -625.0, -500_000.0, 41.0, ""), "secc")
    recorder.event(ev.PowerSample(172.0, 800.0, 0.0, 0.0, 40.5, ""), "secc")
    recorder.event(ev.SessionEnded(172.0, "success", "terminated"), "secc")
    summary = recorder.finish()
    assert summary.energy_charged_wh == pytest.approx(10_000.0)
    assert summary.energy_discharged_wh == pytest.approx(5_000.0)
    assert summary.peak_charge_power_w == 1_000_000.0
    assert summary.peak_discharge_power_w == 500_000.0
    assert summary.duration_s == pytest.approx(72.0)
    assert summary.charge_loop_cycles == 3 and summary.final_soc == 40.5
    assert summary.result == "success"
    last = _records(stream)[-1]
    assert last["kind"] == "summary" and last["energy_discharged_wh"] == pytest.approx(5000.0)
    assert lines[-1].startswith("summary: charged 10.00 kWh, discharged 5.00 kWh")


def test_a_failure_overrides_the_result() -> None:
    recorder, _stream, _ = _recorder()
    recorder.event(ev.SessionEnded(100.0, "success", "terminated"), "evcc")
    summary = recorder.finish("failed", "SECC: sequence timeout")
    assert summary.result == "failed" and "sequence timeout" in summary.line()


def test_read_trace_round_trip_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    with TraceWriter(path) as writer:
        recorder = SessionRecorder(writer=writer)
        recorder.lifecycle(0.25, "tls", version="TLSv1.3", cipher="TLS_AES_256_GCM_SHA384")
        recorder.finish("success", "done")
    records = list(read_trace(path))
    assert [r["kind"] for r in records] == ["event", "summary"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"t": 0, "kind": "event"}\nnot json\n')
    with pytest.raises(TraceError, match=r"bad\.jsonl:2"):
        list(read_trace(bad))
    bad.write_text('{"kind": "event"}\n')
    with pytest.raises(TraceError, match="needs 't' and 'kind'"):
        list(read_trace(bad))


def test_exi_messages_keep_the_hex_and_the_rendered_xml() -> None:
    """An EXI body is traced as ``exi`` (hex, as sent) and ``xml`` (rendered); the human log's
    key values come from the rendered XML."""
    from mcscomm.codec.auto import shared_codec
    from mcscomm.endpoints.setup import message_renderer

    exi = shared_codec("exi")
    body = exi.encode(shared_codec("xml").decode(0x8004, _full_loop_req()))
    stream = io.StringIO()
    lines: list[str] = []
    recorder = SessionRecorder(
        writer=TraceWriter(stream), human=lines.append, origin=0.0, render=message_renderer
    )
    recorder.event(ev.MessageReceived(1.0, "evcc->secc", 0x8004, "DC_ChargeLoopReq", body), "secc")
    (record,) = _records(stream)
    assert record["exi"] == body.hex() and body[:1] == b"\x80"
    assert record["xml"] == exi.to_xml(0x8004, body)  # type: ignore[attr-defined]
    assert "<ct:PresentSOC>47</ct:PresentSOC>" in str(record["xml"])
    assert "soc=47" in lines[0] and "ev_V=812.3" in lines[0]


def test_a_body_the_renderer_cannot_read_keeps_only_the_hex() -> None:
    def broken(_pt: int, _doc: bytes) -> str | None:
        raise RuntimeError("renderer defect")

    for render in (None, broken, lambda _pt, _doc: None):
        stream = io.StringIO()
        lines: list[str] = []
        recorder = SessionRecorder(writer=TraceWriter(stream), human=lines.append, render=render)
        recorder.event(ev.MessageSent(0.0, "secc->evcc", 0x8004, "X", b"\x80\xff"), "secc")
        (record,) = _records(stream)
        assert record["exi"] == "80ff" and "xml" not in record
        assert lines and "X" in lines[0]


def _full_loop_req() -> bytes:
    """A schema-valid DC_ChargeLoopReq (XML) with the values the human log shows."""
    ct = "urn:iso:std:iso:15118:-20:CommonTypes"
    return (
        f'<DC_ChargeLoopReq xmlns="urn:iso:std:iso:15118:-20:DC" xmlns:ct="{ct}">'
        "<ct:Header><ct:SessionID>0102030405060708</ct:SessionID>"
        "<ct:TimeStamp>1767225600</ct:TimeStamp></ct:Header>"
        "<ct:DisplayParameters><ct:PresentSOC>47</ct:PresentSOC></ct:DisplayParameters>"
        "<ct:MeterInfoRequested>false</ct:MeterInfoRequested>"
        "<EVPresentVoltage><ct:Exponent>-1</ct:Exponent><ct:Value>8123</ct:Value>"
        "</EVPresentVoltage>"
        "<Dynamic_DC_CLReqControlMode><ct:EVTargetEnergyRequest><ct:Exponent>3</ct:Exponent>"
        "<ct:Value>100</ct:Value></ct:EVTargetEnergyRequest>"
        "<ct:EVMaximumEnergyRequest><ct:Exponent>3</ct:Exponent><ct:Value>200</ct:Value>"
        "</ct:EVMaximumEnergyRequest><ct:EVMinimumEnergyRequest><ct:Exponent>3</ct:Exponent>"
        "<ct:Value>10</ct:Value></ct:EVMinimumEnergyRequest>"
        "<EVMaximumChargePower><ct:Exponent>3</ct:Exponent><ct:Value>750</ct:Value>"
        "</EVMaximumChargePower><EVMinimumChargePower><ct:Exponent>0</ct:Exponent>"
        "<ct:Value>0</ct:Value></EVMinimumChargePower><EVMaximumChargeCurrent>"
        "<ct:Exponent>0</ct:Exponent><ct:Value>3000</ct:Value></EVMaximumChargeCurrent>"
        "<EVMaximumVoltage><ct:Exponent>0</ct:Exponent><ct:Value>1000</ct:Value>"
        "</EVMaximumVoltage><EVMinimumVoltage><ct:Exponent>0</ct:Exponent><ct:Value>500</ct:Value>"
        "</EVMinimumVoltage></Dynamic_DC_CLReqControlMode></DC_ChargeLoopReq>"
    ).encode()

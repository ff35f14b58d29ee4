"""End-to-end sessions between the real EVCC and SECC over loopback TLS 1.3 (virtual time).

Each service × control mode × authorization runs a complete ISO 15118-20 session through the real
endpoints: PKI, the -20 TLS profile, V2GTP, EXI on the wire (schema-validated, EXI-canonical
signatures), the power layer. ``--encoding xml`` and the SECC's ``auto`` detection are checked
too. Durations are virtual; a run takes well under a second of wall time.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

session = pytest.importorskip("mcscomm.session")
if not hasattr(session, "SeccConnection"):  # pragma: no cover - until the sessions land
    pytest.skip("mcscomm.session has no SeccConnection yet", allow_module_level=True)

from mcscomm.codec.auto import shared_codec  # noqa: E402
from mcscomm.endpoints.pair import run_pair  # noqa: E402
from mcscomm.endpoints.setup import (  # noqa: E402
    SessionOptions,
    evcc_config,
    evcc_connection,
    load_pki,
    message_renderer,
    secc_config,
    secc_factory,
    tls_contexts,
)
from mcscomm.trace import SessionRecorder, TraceWriter  # noqa: E402


@pytest.fixture(scope="module")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("pki")
    load_pki(SessionOptions(pki_dir=directory))
    return directory


async def _run(options: SessionOptions) -> tuple[object, list[dict[str, object]]]:
    manifest = load_pki(options)
    server_ssl, client_ssl = tls_contexts(manifest) if options.tls else (None, None)
    stream = io.StringIO()
    result = await run_pair(
        secc_factory(
            secc_config(options, manifest), tls=options.tls, encoding=options.secc_encoding
        ),
        evcc_connection(
            evcc_config(options, manifest), tls=options.tls, encoding=options.evcc_encoding
        ),
        server_ssl=server_ssl,
        client_ssl=client_ssl,
        recorder=SessionRecorder(writer=TraceWriter(stream), render=message_renderer),
    )
    return result, [json.loads(line) for line in stream.getvalue().splitlines()]


def _check_exi_trace(records: list[dict[str, object]]) -> None:
    """Every message went as EXI; its ``xml`` is the same document (first of each kind checked
    through both codecs: the EXI decodes to the message the XML decodes to)."""
    exi, xml = shared_codec("exi"), shared_codec("xml")
    seen: set[tuple[object, object]] = set()
    for record in records:
        if record["kind"] != "message":
            continue
        assert str(record["exi"]).startswith("80"), record  # the V2G profile's bare header
        assert str(record["xml"]).startswith("<"), record
        key = (record["dir"], record["message"])
        if key in seen:
            continue
        seen.add(key)
        payload_type = int(record["payload_type"])  # type: ignore[call-overload]
        from_exi = exi.decode(payload_type, bytes.fromhex(str(record["exi"])))
        from_xml = xml.decode(payload_type, str(record["xml"]).encode())
        assert from_exi == from_xml, record["message"]
        assert type(from_exi).__name__ == record["message"]


@pytest.mark.parametrize("auth", ["eim", "pnc"])
@pytest.mark.parametrize("control", ["scheduled", "dynamic"])
@pytest.mark.parametrize("service", ["DC", "DC_BPT", "MCS", "MCS_BPT"])
async def test_every_service_control_and_auth(
    service: str, control: str, auth: str, pki_dir: Path
) -> None:
    charger = "mcs_1mw_bpt"
    truck = "mcs_7pack"
    options = SessionOptions(
        service=service,
        control=control,
        auth=auth,
        charger=charger,
        truck=truck,
        duration=60.0,
        pki_dir=pki_dir,
    )
    result, records = await _run(options)
    assert result.ok, (result.evcc, result.secc)  # type: ignore[attr-defined]
    _check_exi_trace(records)
    messages = [r["message"] for r in records if r["kind"] == "message"]
    assert messages[0] == "SupportedAppProtocolReq"
    assert "DC_ChargeLoopReq" in messages and messages[-1] == "SessionStopRes"
    if auth == "pnc":
        assert "AuthorizationReq" in messages
        _check_pnc_signature_over_exi(records)
    tls = next(r for r in records if r.get("event") == "tls")
    assert tls["version"] == "TLSv1.3" and tls["cipher"] == "TLS_AES_256_GCM_SHA384"
    power = [r for r in records if r["kind"] == "power"]
    assert len(power) >= 200  # 60 s of loop at 0.25 s (at least once per cycle)
    summary = records[-1]
    assert summary["kind"] == "summary" and summary["result"] == "success"
    assert summary["energy_charged_wh"] > 0  # type: ignore[operator]
    if service.endswith("BPT"):
        pass  # whether it discharges depends on the scenario's setpoints
    else:
        assert all(float(r["power_w"]) >= 0 for r in power)  # type: ignore[arg-type]


def _check_pnc_signature_over_exi(records: list[dict[str, object]]) -> None:
    """The SECC accepted (the session succeeded) a PnC AuthorizationReq signed over canonical
    EXI: the reference digest is the digest of the EXI fragment, not of the XML C14N."""
    from mcscomm.exi import CANONICAL_EXI
    from mcscomm.security.xmldsig import digest

    record = next(
        r for r in records if r["kind"] == "message" and r["message"] == "AuthorizationReq"
    )
    exi, xml = shared_codec("exi"), shared_codec("xml")
    message = exi.decode(0x8002, bytes.fromhex(str(record["exi"])))
    signature = message.header.signature  # type: ignore[union-attr]
    assert signature is not None
    info = signature.signed_info
    assert info.canonicalization_method == CANONICAL_EXI
    (reference,) = info.references
    assert reference.transforms == [CANONICAL_EXI]
    fragment = message.authorization_mode  # type: ignore[union-attr]
    assert reference.uri == "#" + fragment.id
    assert digest(exi.canonicalize(fragment), "secp521r1") == reference.digest_value
    assert digest(xml.canonicalize(fragment), "secp521r1") != reference.digest_value


async def test_xml_on_both_sides_with_encoding_xml(pki_dir: Path) -> None:
    options = SessionOptions(
        pki_dir=pki_dir, duration=10.0, secc_encoding="xml", evcc_encoding="xml"
    )
    result, records = await _run(options)
    assert result.ok, (result.evcc, result.secc)  # type: ignore[attr-defined]
    messages = [r for r in records if r["kind"] == "message"]
    assert messages and all("exi" not in r and str(r["xml"]).startswith("<") for r in messages)
    auth = next(r for r in messages if r["message"] == "AuthorizationReq")
    assert "xml-exc-c14n" in str(auth["xml"])  # PnC signed over exclusive XML C14N


async def test_auto_secc_serves_an_xml_truck(pki_dir: Path) -> None:
    """What conformance scripts and the fuzzer do: speak XML to a default (auto) SECC."""
    options = SessionOptions(pki_dir=pki_dir, duration=10.0, evcc_encoding="xml")
    assert options.secc_encoding == "auto"
    result, records = await _run(options)
    assert result.ok, (result.evcc, result.secc)  # type: ignore[attr-defined]
    messages = [r for r in records if r["kind"] == "message"]
    assert all("exi" not in r for r in messages)  # the SECC answered in XML


async def test_strict_exi_secc_refuses_an_xml_truck(pki_dir: Path) -> None:
    options = SessionOptions(
        pki_dir=pki_dir, duration=10.0, secc_encoding="exi", evcc_encoding="xml"
    )
    result, records = await _run(options)
    assert not result.ok  # type: ignore[attr-defined]
    assert "SessionSetupReq" not in [r.get("message") for r in records]


async def test_default_depot_session_charges_and_discharges(pki_dir: Path) -> None:
    # The depot plan discharges into the evening peak from 600 s on; 700 s shows both directions.
    result, records = await _run(SessionOptions(pki_dir=pki_dir, duration=700.0))
    assert result.ok, (result.evcc, result.secc)  # type: ignore[attr-defined]
    summary = records[-1]
    assert summary["energy_charged_wh"] > 0 and summary["energy_discharged_wh"] > 0  # type: ignore[operator]
    tls = next(r for r in records if r.get("event") == "tls")
    assert tls["group"] == "secp521r1" and tls["peer_signature"] == "ecdsa_secp521r1_sha512"
    power = [r for r in records if r["kind"] == "power"]
    assert any(float(r["power_w"]) < 0 for r in power)  # type: ignore[arg-type]
    assert any(r.get("setpoint_w") is not None for r in power)


async def test_plain_tcp_under_the_lenient_profile(pki_dir: Path) -> None:
    options = SessionOptions(profile="lenient", tls=False, duration=10.0, pki_dir=pki_dir)
    result, records = await _run(options)
    assert result.ok, (result.evcc, result.secc)  # type: ignore[attr-defined]
    assert next(r for r in records if r.get("event") == "tls")["tls"] is False


async def test_host_actions_steer_the_pair(pki_dir: Path) -> None:
    """run_pair actions: the backend asks for discharge at 20 s, the truck stops at 40 s."""
    options = SessionOptions(pki_dir=pki_dir, scenario=None)
    manifest = load_pki(options)
    server_ssl, client_ssl = tls_contexts(manifest)
    stream = io.StringIO()
    result = await run_pair(
        secc_factory(secc_config(options, manifest), tls=True),
        evcc_connection(evcc_config(options, manifest)),
        server_ssl=server_ssl,
        client_ssl=client_ssl,
        recorder=SessionRecorder(writer=TraceWriter(stream), render=message_renderer),
        actions=[
            (20.0, "secc", lambda conn, now: conn.set_backend(-200_000.0, now)),  # type: ignore[attr-defined]
            (40.0, "evcc", lambda conn, now: conn.stop()),  # type: ignore[attr-defined]
        ],
    )
    assert result.ok, (result.evcc, result.secc)
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    power = [r for r in records if r["kind"] == "power"]
    assert all(r["power_w"] >= 0 for r in power if r["t"] < 20.0)
    assert any(r["power_w"] < 0 for r in power if 25.0 < r["t"] < 40.0)
    assert max(r["t"] for r in power) <= 40.5  # the loop ended when the truck was told to stop
    assert any(r.get("event") == "backend_setpoint_changed" for r in records)


@pytest.mark.slow
async def test_the_same_session_in_real_time(pki_dir: Path) -> None:
    """--realtime: the same endpoints on the loop's clock (cable check and pre-charge take real
    seconds here, so the loop is kept short)."""
    options = SessionOptions(pki_dir=pki_dir, auth="eim", duration=1.0, scenario=None)
    manifest = load_pki(options)
    server_ssl, client_ssl = tls_contexts(manifest)
    result = await run_pair(
        secc_factory(secc_config(options, manifest), tls=True),
        evcc_connection(evcc_config(options, manifest)),
        server_ssl=server_ssl,
        client_ssl=client_ssl,
        virtual=False,
    )
    assert result.ok, (result.evcc, result.secc)
    assert result.summary.charge_loop_cycles >= 3
    assert result.wall_s >= result.clock_s * 0.9  # real time really passed

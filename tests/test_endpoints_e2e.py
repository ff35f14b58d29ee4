"""End-to-end sessions between the real EVCC and SECC over loopback TLS 1.3 (virtual time).

Each service × control mode × authorization runs a complete ISO 15118-20 session through the real
endpoints: PKI, the -20 TLS profile, V2GTP, the XML codec with schema validation, signatures and
the power layer. Durations are virtual; a run takes well under a second of wall time.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

session = pytest.importorskip("mcscomm.session")
if not hasattr(session, "SeccConnection"):  # pragma: no cover - until the sessions land
    pytest.skip("mcscomm.session has no SeccConnection yet", allow_module_level=True)

from mcscomm.endpoints.pair import run_pair  # noqa: E402
from mcscomm.endpoints.setup import (  # noqa: E402
    SessionOptions,
    evcc_config,
    evcc_connection,
    load_pki,
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
        secc_factory(secc_config(options, manifest), tls=options.tls),
        evcc_connection(evcc_config(options, manifest), tls=options.tls),
        server_ssl=server_ssl,
        client_ssl=client_ssl,
        recorder=SessionRecorder(writer=TraceWriter(stream)),
    )
    return result, [json.loads(line) for line in stream.getvalue().splitlines()]


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
    messages = [r["message"] for r in records if r["kind"] == "message"]
    assert messages[0] == "SupportedAppProtocolReq"
    assert "DC_ChargeLoopReq" in messages and messages[-1] == "SessionStopRes"
    if auth == "pnc":
        assert "AuthorizationReq" in messages
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
        recorder=SessionRecorder(writer=TraceWriter(stream)),
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

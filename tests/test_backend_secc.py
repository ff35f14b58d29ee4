"""The OCPP station on the real SECC: a full -20 session (EVCC and SECC over loopback TCP, real
time) steered by the CSMS through ``secc_link`` -- Dynamic control follows the setpoint at the
next charge loop, Scheduled control renegotiates its schedule."""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

import pytest

from mcscomm.backend.cli import attach_from_args
from mcscomm.ems import Csms

pytest.importorskip("mcscomm.endpoints.setup")


def dynamic(setpoint: float) -> dict[str, object]:
    return {
        "id": 7,
        "stack_level": 0,
        "charging_profile_purpose": "TxProfile",
        "charging_profile_kind": "Dynamic",
        "charging_schedule": [
            {
                "id": 1,
                "charging_rate_unit": "W",
                "charging_schedule_period": [
                    {
                        "start_period": 0,
                        "setpoint": setpoint,
                        "limit": 750e3,
                        "discharge_limit": -750e3,
                        "operation_mode": "CentralSetpoint",
                    }
                ],
            }
        ],
    }


@pytest.mark.slow  # ~10 s each: a real-time session
@pytest.mark.parametrize("control", ["dynamic", "scheduled"])
async def test_real_session_follows_the_backend_both_ways(control: str) -> None:
    from mcscomm.endpoints.pair import run_pair
    from mcscomm.endpoints.setup import (
        SessionOptions,
        evcc_config,
        evcc_connection,
        secc_config,
        secc_factory,
    )

    csms = Csms(heartbeat_s=1)
    await csms.start()
    opts = SessionOptions(
        auth="eim", scenario=None, duration=6.0, profile="lenient", tls=False, control=control
    )
    sc, ec = secc_config(opts, None), evcc_config(opts, None)
    args = argparse.Namespace(csms=csms.url("CS1"), meter_interval=0.5)
    marks: dict[str, float] = {}
    try:
        factory, unlink = await attach_from_args(args, secc_factory(sc, tls=False), sc)
        try:

            async def steer() -> None:
                rec_ok = await csms.wait_for(lambda: 1 in csms.stations["CS1"].active_tx, 5)
                assert rec_ok
                tx = csms.transactions[csms.stations["CS1"].active_tx[1]]
                assert await csms.wait_for(lambda: tx.charging_state == "Charging", 8)
                assert (await csms.set_charging_profile("CS1", 1, dynamic(300e3)))[0] == "Accepted"
                marks["charge"] = time.monotonic()
                await asyncio.sleep(1.5)
                status = await csms.update_dynamic_schedule("CS1", 7, {"setpoint": -200e3})
                assert status == ("Accepted", None)
                marks["discharge"] = time.monotonic()

            steering = asyncio.create_task(steer())
            result = await run_pair(
                factory,
                evcc_connection(ec, tls=False),
                server_ssl=None,
                client_ssl=None,
                virtual=False,
            )
            await steering
            assert result.ok, result.evcc.reason
        finally:
            await unlink()
        needs = csms.stations["CS1"].needs[1]
        assert needs["requested_energy_transfer"] == "DC_BPT"
        if control == "dynamic":
            # resent once the truck's energy requests and SoC were known (Dynamic charge loop)
            assert needs["v2x_charging_parameters"]["ev_target_energy_request"] > 0
            assert "state_of_charge" in needs["dc_charging_parameters"]
        assert needs["control_mode"] == (
            "ScheduledControl" if control == "scheduled" else "DynamicControl"
        )
        tx = next(iter(csms.transactions.values()))
        assert tx.ended and tx.seq_nos == list(range(len(tx.seq_nos)))
        # the meter values the CSMS got show the charge setpoint, then the discharge one
        imports = [v.get("Power.Active.Import", 0.0) for _, v in tx.samples]
        exports = [v.get("Power.Active.Export", 0.0) for _, v in tx.samples]
        assert any(abs(p - 300e3) <= 30e3 for p in imports)
        assert sum(1 for p in exports if abs(p - 200e3) <= 20e3) >= 3
        assert max(imports) <= 750e3 + 1e-6 and max(exports) <= 750e3 + 1e-6
    finally:
        await csms.stop()


@pytest.mark.slow  # a few seconds: real-time session over TLS 1.3
async def test_pnc_session_over_tls_authorizes_with_the_emaid(tmp_path: Path) -> None:
    from mcscomm.endpoints.pair import run_pair
    from mcscomm.endpoints.setup import (
        SessionOptions,
        evcc_config,
        evcc_connection,
        load_pki,
        secc_config,
        secc_factory,
        tls_contexts,
    )

    csms = Csms(heartbeat_s=1)
    await csms.start()
    try:
        opts = SessionOptions(auth="pnc", scenario=None, duration=2.0, pki_dir=tmp_path)
        manifest = load_pki(opts)
        server_ssl, client_ssl = tls_contexts(manifest)
        sc, ec = secc_config(opts, manifest), evcc_config(opts, manifest)
        args = argparse.Namespace(csms=csms.url("CS1"), meter_interval=0.5)
        factory, unlink = await attach_from_args(args, secc_factory(sc, tls=True), sc)
        try:
            result = await run_pair(
                factory,
                evcc_connection(ec, tls=True),
                server_ssl=server_ssl,
                client_ssl=client_ssl,
                virtual=False,
            )
        finally:
            await unlink()
        assert result.ok, result.evcc.reason
        rec = csms.stations["CS1"]
        assert len(rec.authorizations) == 1 and rec.authorizations[0]  # the contract's EMAID
        tx = next(iter(csms.transactions.values()))
        assert tx.id_token == rec.authorizations[0] and "Authorized" in tx.triggers
        assert tx.ended and tx.stopped_reason in ("StoppedByEV", "SOCLimitReached")
    finally:
        await csms.stop()

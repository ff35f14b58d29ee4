"""The ``--csms`` option helpers (importable without the backend extra)."""

from __future__ import annotations

import argparse

import pytest

from mcscomm.backend.cli import add_arguments, attach_from_args, check_url, station_config
from mcscomm.backend.station import OfflinePolicy


def test_options_parse_into_a_station_config() -> None:
    p = argparse.ArgumentParser()
    add_arguments(p)
    args = p.parse_args(
        [
            "--csms",
            "ws://127.0.0.1:9000/ocpp/CS7",
            "--csms-offline",
            "fallback",
            "--csms-fallback-kw",
            "150",
            "--evses",
            "2",
            "--meter-interval",
            "5",
        ]
    )
    cfg = station_config(args)
    assert cfg.station_id == "CS7" and cfg.evse_count == 2
    assert cfg.offline_policy is OfflinePolicy.FALLBACK and cfg.fallback_limit_w == 150e3
    assert cfg.meter_interval_s == 5.0


@pytest.mark.parametrize("url", ["http://x/CS1", "ws://host/", "ws:///CS1", "CS1"])
def test_bad_urls_are_one_line_errors(url: str) -> None:
    with pytest.raises(ValueError, match="--csms wants"):
        check_url(url)


async def test_without_csms_the_factory_is_unchanged() -> None:
    def factory(now: float) -> object:
        return now

    args = argparse.Namespace(csms=None)
    same, unlink = await attach_from_args(args, factory, None)
    assert same is factory
    await unlink()
    with pytest.raises(ValueError):
        await attach_from_args(argparse.Namespace(csms="ws://h:1/"), factory, None)

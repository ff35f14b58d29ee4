"""Test PKIs shared by tests/test_pki.py, test_tls.py and test_xmldsig.py.

Built once per test session (per xdist worker) under a temporary directory: for each algorithm
family a good PKI, a second PKI with the same names but other keys ("unknown root"), and PKIs
whose four leaves are expired or not yet valid (CAs valid).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

from mcscomm.security import pki

VARIANTS = ("good", "other", "expired", "future")
PkiFactory = Callable[[pki.Algorithm, str], pki.Manifest]


def build(directory: Path, algorithm: pki.Algorithm, variant: str) -> pki.Manifest:
    now = dt.datetime.now(dt.UTC)
    leaf_validity = {
        "expired": (now - dt.timedelta(days=30), now - dt.timedelta(days=1)),
        "future": (now + dt.timedelta(days=1), now + dt.timedelta(days=30)),
    }.get(variant)
    return pki.init_pki(directory, algorithm, days=30, leaf_validity=leaf_validity)


_CACHE: dict[tuple[str, str], pki.Manifest] = {}


def get_pki(base: Path, algorithm: pki.Algorithm, variant: str = "good") -> pki.Manifest:
    """The PKI ``(algorithm, variant)``, built at most once per process under ``base``."""
    assert variant in VARIANTS, variant
    if (algorithm, variant) not in _CACHE:
        _CACHE[algorithm, variant] = build(base / f"{algorithm}-{variant}", algorithm, variant)
    return _CACHE[algorithm, variant]


def factory(tmp_path_factory: pytest.TempPathFactory) -> PkiFactory:
    """A ``(algorithm, variant) -> Manifest`` for a test module's own session fixture."""
    base = tmp_path_factory.getbasetemp() / "pki"

    def get(algorithm: pki.Algorithm, variant: str = "good") -> pki.Manifest:
        return get_pki(base, algorithm, variant)

    return get

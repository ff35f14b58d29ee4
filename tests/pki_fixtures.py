"""Test PKIs shared by tests/test_pki.py, test_tls.py and test_xmldsig.py.

Built once per test session (per xdist worker) under a temporary directory: for each algorithm
family a good PKI, a second PKI with the same names but other keys ("unknown root"), and PKIs
whose four leaves are expired or not yet valid (CAs valid).

The directory on disk, not an in-memory cache, is what decides whether a PKI exists: this module
is imported both as ``pki_fixtures`` (test_tls/test_pki/test_xmldsig) and as
``tests.pki_fixtures`` (conformance tests), i.e. twice, with two caches, and both share the
worker's base directory. Whichever xdist worker ran both kinds of tests used to fail with
``PkiExists``. ``init_pki`` installs a PKI with one atomic rename, so "build, or load the one
already there" is safe across processes too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

from mcscomm.security import pki
from mcscomm.security.errors import PkiExists

VARIANTS = ("good", "other", "expired", "future")
PkiFactory = Callable[[pki.Algorithm, str], pki.Manifest]


def build(directory: Path, algorithm: pki.Algorithm, variant: str) -> pki.Manifest:
    now = dt.datetime.now(dt.UTC)
    leaf_validity = {
        "expired": (now - dt.timedelta(days=30), now - dt.timedelta(days=1)),
        "future": (now + dt.timedelta(days=1), now + dt.timedelta(days=30)),
    }.get(variant)
    return pki.init_pki(directory, algorithm, days=30, leaf_validity=leaf_validity)


_CACHE: dict[Path, pki.Manifest] = {}


def get_pki(base: Path, algorithm: pki.Algorithm, variant: str = "good") -> pki.Manifest:
    """The PKI ``(algorithm, variant)`` under ``base``: built on first use, else loaded from disk
    (idempotent, also across module copies and processes sharing ``base``)."""
    assert variant in VARIANTS, variant
    directory = (base / f"{algorithm}-{variant}").resolve()
    hit = _CACHE.get(directory)
    if hit is not None:
        return hit
    try:
        manifest = build(directory, algorithm, variant)
    except PkiExists:
        manifest = pki.load_manifest(directory)  # built by another importer or process: reuse
    assert manifest.algorithm == algorithm, (directory, manifest.algorithm)
    _CACHE[directory] = manifest
    return manifest


def factory(tmp_path_factory: pytest.TempPathFactory) -> PkiFactory:
    """A ``(algorithm, variant) -> Manifest`` for a test module's own session fixture."""
    base = tmp_path_factory.getbasetemp() / "pki"

    def get(algorithm: pki.Algorithm, variant: str = "good") -> pki.Manifest:
        return get_pki(base, algorithm, variant)

    return get

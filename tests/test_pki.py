"""The test PKI generator: structure, X.509 profile, manifest contract, CLI."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from pathlib import Path

import pki_fixtures
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mcscomm import cli
from mcscomm.security import pki
from mcscomm.security.errors import PkiError, PkiExists


@pytest.fixture(scope="module")
def pkis(tmp_path_factory: pytest.TempPathFactory) -> pki_fixtures.PkiFactory:
    return pki_fixtures.factory(tmp_path_factory)


EXPECTED_KEYS = {
    "secc_leaf",
    "cps_leaf",
    "oem_prov_leaf",
    "contract_leaf",
    "v2g_root",
    "oem_root",
    "mo_root",
}


def cn(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


@pytest.mark.parametrize("algorithm", pki.ALGORITHMS)
def test_manifest_has_exactly_the_contract_keys(tmp_path: Path, algorithm: pki.Algorithm) -> None:
    pki.init_pki(tmp_path, algorithm)
    raw = json.loads((tmp_path / "manifest.json").read_text())
    assert set(raw) == EXPECTED_KEYS
    for role in pki.LEAF_ROLES:
        assert set(raw[role]) == {"cert", "key", "chain"}
        for rel in raw[role].values():
            assert not Path(rel).is_absolute() and (tmp_path / rel).is_file()
    for role in pki.ROOT_ROLES:
        assert set(raw[role]) == {"cert"}
    assert (tmp_path / raw["secc_leaf"]["key"]).stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("algorithm", pki.ALGORITHMS)
def test_chains_are_leaf_subca2_subca1_and_signed_up_to_the_root(
    pkis: pki_fixtures.PkiFactory,
    algorithm: pki.Algorithm,
) -> None:
    m = pkis(algorithm, "good")
    assert m.algorithm == algorithm
    names = {
        "secc_leaf": ["DE*MCS*E0001", "CPOSubCA2", "CPOSubCA1", "V2GRootCA"],
        "cps_leaf": ["CPSLeaf", "CPSSubCA2", "CPSSubCA1", "V2GRootCA"],
        "oem_prov_leaf": ["WMCSTRUCK000000001", "OEMSubCA2", "OEMSubCA1", "OEMRootCA"],
        "contract_leaf": ["DEMCSCA12345678", "MOSubCA2", "MOSubCA1", "MORootCA"],
    }
    for role, expected in names.items():
        chain = [*m.chain(role), m.certificate(pki.ROOT_OF[role])]
        assert [cn(c) for c in chain] == expected
        assert chain[0] == m.certificate(role)
        for child, parent in itertools.pairwise(chain):
            assert child.issuer == parent.subject
            child.verify_directly_issued_by(parent)  # raises on a bad signature
            aki = child.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
            ski = parent.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
            assert aki.key_identifier == ski.digest
        root = chain[-1]
        root.verify_directly_issued_by(root)
        key = chain[0].public_key()
        if algorithm == "ed448":
            assert isinstance(key, ed448.Ed448PublicKey)
            assert chain[0].signature_hash_algorithm is None
        else:
            assert isinstance(key, ec.EllipticCurvePublicKey)
            assert isinstance(key.curve, ec.SECP521R1)
            assert isinstance(chain[0].signature_hash_algorithm, hashes.SHA512)


def test_x509_profile_of_cas_and_leaves(
    pkis: pki_fixtures.PkiFactory,
) -> None:
    m = pkis("secp521r1", "good")
    chain = m.chain("oem_prov_leaf")
    leaf, sub2, sub1 = chain
    root = m.certificate("oem_root")
    for cert, path_len in ((root, 2), (sub1, 1), (sub2, 0)):
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
        assert bc.critical and bc.value.ca and bc.value.path_length == path_len
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
        assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign
        assert not ku.value.digital_signature
    bc = leaf.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and not bc.value.ca
    leaf_ku = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert leaf_ku.digital_signature and not leaf_ku.key_cert_sign
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    secc_eku = m.certificate("secc_leaf").extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert list(secc_eku.value) == [ExtendedKeyUsageOID.SERVER_AUTH]
    dc = m.certificate("contract_leaf").subject.get_attributes_for_oid(NameOID.DOMAIN_COMPONENT)
    assert dc[0].value == "MO"
    serials = {c.serial_number for c in (leaf, sub2, sub1, root)}
    assert len(serials) == 4 and all(0 < s < 2**160 for s in serials)


def test_validity_days_and_leaf_override(tmp_path: Path) -> None:
    now = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    m = pki.init_pki(tmp_path / "a", "ed448", days=10, now=now)
    root = m.certificate("v2g_root")
    assert root.not_valid_before_utc == now - dt.timedelta(hours=1)
    assert root.not_valid_after_utc - root.not_valid_before_utc == dt.timedelta(days=10)
    window = (now - dt.timedelta(days=5), now - dt.timedelta(days=2))
    m2 = pki.init_pki(tmp_path / "b", "ed448", now=now, leaf_validity=window)
    leaf = m2.certificate("contract_leaf")
    assert (leaf.not_valid_before_utc, leaf.not_valid_after_utc) == window
    assert m2.certificate("mo_root").not_valid_after_utc > now


def test_never_overwrites_without_force(tmp_path: Path) -> None:
    first = pki.init_pki(tmp_path, "secp521r1")
    before = first.certificate("v2g_root")
    with pytest.raises(PkiExists):
        pki.init_pki(tmp_path, "secp521r1")
    assert pki.load_manifest(tmp_path).certificate("v2g_root") == before
    again = pki.init_pki(tmp_path, "ed448", force=True)
    assert again.algorithm == "ed448" and again.certificate("v2g_root") != before


def test_bad_arguments_and_broken_manifests(tmp_path: Path) -> None:
    with pytest.raises(PkiError, match="algorithm"):
        pki.init_pki(tmp_path / "x", "secp256r1")  # type: ignore[arg-type]
    with pytest.raises(PkiError, match="days"):
        pki.init_pki(tmp_path / "x", days=0)
    with pytest.raises(PkiError, match="no PKI"):
        pki.load_manifest(tmp_path / "nothing")
    pki.init_pki(tmp_path / "m", "ed448")
    (tmp_path / "m" / "cps_leaf.key").unlink()
    with pytest.raises(PkiError, match="cps_leaf"):
        pki.load_manifest(tmp_path / "m")
    (tmp_path / "m" / "manifest.json").write_text("{not json")
    with pytest.raises(PkiError, match="unreadable"):
        pki.load_manifest(tmp_path / "m")


def test_ensure_pki_creates_once_and_default_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MCSCOMM_PKI", str(tmp_path / "env"))
    assert pki.default_pki_dir() == tmp_path / "env"
    m1 = pki.ensure_pki(None, "ed448")
    m2 = pki.ensure_pki(None, "ed448")
    assert m1.certificate("v2g_root") == m2.certificate("v2g_root")
    with pytest.raises(PkiError, match="ed448"):
        pki.ensure_pki(None, "secp521r1")
    monkeypatch.delenv("MCSCOMM_PKI")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert pki.default_pki_dir("ed448") == tmp_path / "home/.cache/mcscomm/pki/ed448"


def test_extra_keys_match_their_certificates(
    pkis: pki_fixtures.PkiFactory,
) -> None:
    m = pkis("secp521r1", "good")
    sub2 = m.chain("contract_leaf")[1]
    assert m.extra_key("mo_sub_ca2").public_key() == sub2.public_key()
    assert m.private_key("secc_leaf").public_key() == m.certificate("secc_leaf").public_key()


def test_cli_init_and_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "cli"
    assert cli.main(["certs", "init", str(target), "--algorithm", "ed448", "--days", "7"]) == 0
    assert pki.load_manifest(target).algorithm == "ed448"
    assert cli.main(["certs", "init", str(target)]) == 1
    assert "--force" in capsys.readouterr().err
    assert cli.main(["certs", "init", str(target), "--force"]) == 0
    assert pki.load_manifest(target).algorithm == "secp521r1"
    capsys.readouterr()
    assert cli.main(["certs", "show", str(target)]) == 0
    out = capsys.readouterr().out
    for role in EXPECTED_KEYS:
        assert role in out
    assert "DEMCSCA12345678" in out and "chain OK" in out
    assert cli.main(["certs", "show", str(tmp_path / "missing")]) == 1
    assert "no PKI" in capsys.readouterr().err


def _ensure_in_subprocess(directory: str) -> str:
    m = pki.ensure_pki(directory, "secp521r1")
    key = m.private_key("secc_leaf").public_key()
    assert key == m.certificate("secc_leaf").public_key()
    return m.certificate("v2g_root").fingerprint(hashes.SHA256()).hex()


def test_concurrent_first_use_yields_one_consistent_pki(tmp_path: Path) -> None:
    import concurrent.futures
    import multiprocessing

    target = str(tmp_path / "shared")
    ctx = multiprocessing.get_context("fork")  # fast; the child only runs pki code
    with concurrent.futures.ProcessPoolExecutor(4, mp_context=ctx) as pool:
        roots = list(pool.map(_ensure_in_subprocess, [target] * 8))
    final = pki.load_manifest(target)
    assert set(roots) == {final.certificate("v2g_root").fingerprint(hashes.SHA256()).hex()}
    for role in pki.LEAF_ROLES:
        assert final.private_key(role).public_key() == final.certificate(role).public_key()
        assert final.chain(role)[0] == final.certificate(role)
    assert not [p for p in tmp_path.iterdir() if "staging" in p.name]


def test_init_into_an_existing_directory_with_other_files(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("keep me")
    pki.init_pki(tmp_path, "ed448")
    assert (tmp_path / "notes.txt").read_text() == "keep me"
    assert pki.load_manifest(tmp_path).algorithm == "ed448"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert pki.init_pki(empty, "ed448").directory == empty


def test_missing_or_broken_profile_is_a_pki_error(tmp_path: Path) -> None:
    with pytest.raises(PkiError, match="profile"):
        pki.init_pki(tmp_path / "a", profile=tmp_path / "missing.toml")
    (tmp_path / "bad.toml").write_text("[cert\n")
    with pytest.raises(PkiError, match="profile"):
        pki.init_pki(tmp_path / "b", profile=tmp_path / "bad.toml")


def test_cli_show_reports_a_broken_chain(
    pkis: pki_fixtures.PkiFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    m = pkis("ed448", "expired")
    assert cli.main(["certs", "show", str(m.directory)]) == 1
    out = capsys.readouterr().out
    assert out.count("chain FAILED") == 4 and "expired" in out


def test_shared_fixture_pki_survives_a_second_copy_of_its_module(tmp_path: Path) -> None:
    # tests import the fixture module as ``pki_fixtures`` and as ``tests.pki_fixtures``: two
    # module objects, two caches, one per-worker base directory. The second copy must reuse the
    # PKI on disk instead of failing with PkiExists (what made `pytest -n 2` flaky).
    import importlib.util

    spec = importlib.util.spec_from_file_location("_pki_fixtures_copy", pki_fixtures.__file__)
    assert spec is not None and spec.loader is not None
    copy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(copy)
    assert copy is not pki_fixtures and copy._CACHE is not pki_fixtures._CACHE
    first = pki_fixtures.get_pki(tmp_path, "ed448", "expired")
    second = copy.get_pki(tmp_path, "ed448", "expired")
    assert second.directory == first.directory
    assert second.certificate("v2g_root") == first.certificate("v2g_root")
    # and again from the cache: the same manifest object
    assert copy.get_pki(tmp_path, "ed448", "expired") is second

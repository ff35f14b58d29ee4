"""Test PKI for ISO 15118-20: the V2G/CPO, CPS, OEM and MO chains (facts §6.3).

``init_pki(dir, algorithm)`` issues every certificate of ``certs/pki-profile.toml`` with one
algorithm family (ECDSA secp521r1 + SHA-512, or Ed448: V2G20-2319/2320/2673/2674) and writes
``DIR/manifest.json``, which maps roles to files (paths relative to DIR):

* ``secc_leaf``, ``cps_leaf``, ``oem_prov_leaf``, ``contract_leaf``: ``{"cert", "key", "chain"}``,
  ``chain`` being a PEM bundle of the leaf followed by its Sub-CA 2 and Sub-CA 1;
* ``v2g_root``, ``oem_root``, ``mo_root``: ``{"cert"}``.

Sub-CA keys are written too (``<name>.key``; e.g. the MO Sub-CA 2 key signs price schedules), but
only the roles above are part of the manifest contract. Keys are unencrypted PKCS#8 PEM with mode
0600: this is a *test* PKI.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, TypeVar, cast, get_args

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mcscomm.security.errors import PkiError, PkiExists

Algorithm = Literal["secp521r1", "ed448"]
ALGORITHMS: tuple[Algorithm, ...] = get_args(Algorithm)
PrivateKey = ec.EllipticCurvePrivateKey | ed448.Ed448PrivateKey
PublicKey = ec.EllipticCurvePublicKey | ed448.Ed448PublicKey

LEAF_ROLES = ("secc_leaf", "cps_leaf", "oem_prov_leaf", "contract_leaf")
ROOT_ROLES = ("v2g_root", "oem_root", "mo_root")
#: Which root each leaf chains to (facts §6.3).
ROOT_OF: Mapping[str, str] = {
    "secc_leaf": "v2g_root",
    "cps_leaf": "v2g_root",
    "oem_prov_leaf": "oem_root",
    "contract_leaf": "mo_root",
}
MANIFEST = "manifest.json"
#: upper bound for --days: keeps the dates far inside what datetime and X.509 can hold
MAX_DAYS = 100 * 365
_T = TypeVar("_T")
PROFILE_NAME = "pki-profile.toml"
_EKU = {
    "serverAuth": ExtendedKeyUsageOID.SERVER_AUTH,
    "clientAuth": ExtendedKeyUsageOID.CLIENT_AUTH,
}


def profile_path() -> Path:
    """The PKI profile: shipped in the package, or ``certs/`` of a source checkout."""
    packaged = resources.files("mcscomm.security") / PROFILE_NAME
    if packaged.is_file():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "certs" / PROFILE_NAME


def load_profile(path: Path | None = None) -> dict[str, Any]:
    """Parse the PKI profile TOML (see ``certs/pki-profile.toml`` for the format)."""
    path = path or profile_path()
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PkiError(f"PKI profile {path}: {exc}") from None


def default_pki_dir(algorithm: Algorithm = "secp521r1") -> Path:
    """``$MCSCOMM_PKI`` if set, else ``~/.cache/mcscomm/pki/<algorithm>``."""
    env = os.environ.get("MCSCOMM_PKI")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "mcscomm" / "pki" / algorithm


@dataclass(frozen=True)
class Role:
    """Files of one manifest role; ``key``/``chain`` are None for roots."""

    cert: Path
    key: Path | None = None
    chain: Path | None = None


@dataclass(frozen=True)
class Manifest:
    """A loaded ``manifest.json`` with absolute paths and loaders for its files."""

    directory: Path
    roles: Mapping[str, Role] = field(repr=False)

    @property
    def algorithm(self) -> Algorithm:
        """The family, derived from the V2G root's key (the manifest stores only files)."""
        return algorithm_of(self.certificate("v2g_root").public_key())

    def certificate(self, role: str) -> x509.Certificate:
        return _load_pem(self._role(role).cert, x509.load_pem_x509_certificate)

    def chain(self, role: str) -> list[x509.Certificate]:
        """Leaf first, then its Sub-CA 2 and Sub-CA 1 (never the root)."""
        path = self._role(role).chain
        if path is None:
            raise PkiError(f"{role} has no chain in {self.directory / MANIFEST}")
        return _load_pem(path, x509.load_pem_x509_certificates)

    def private_key(self, role: str) -> PrivateKey:
        path = self._role(role).key
        if path is None:
            raise PkiError(f"{role} has no key in {self.directory / MANIFEST}")
        return load_private_key(path)

    def load_all(self) -> None:
        """Load every certificate, chain and key once: PkiError on the first broken file (so a
        tool can refuse a damaged PKI up front instead of failing deep inside a session)."""
        for role in self.roles:
            self.certificate(role)
            if self.roles[role].chain is not None:
                self.chain(role)
            if self.roles[role].key is not None:
                self.private_key(role)

    def extra_key(self, name: str) -> PrivateKey:
        """A Sub-CA key outside the manifest contract, e.g. ``mo_sub_ca2``."""
        return load_private_key(self.directory / f"{name}.key")

    def _role(self, role: str) -> Role:
        try:
            return self.roles[role]
        except KeyError:
            raise PkiError(f"no role {role!r} in {self.directory / MANIFEST}") from None


def algorithm_of(key: object) -> Algorithm:
    """The family of a public or private key; PkiError for anything outside the -20 profile."""
    if isinstance(key, ed448.Ed448PublicKey | ed448.Ed448PrivateKey):
        return "ed448"
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey) and isinstance(
        key.curve, ec.SECP521R1
    ):
        return "secp521r1"
    raise PkiError(f"key type {type(key).__name__} is not secp521r1 or Ed448 (V2G20-2674/2319)")


def load_private_key(path: Path) -> PrivateKey:
    key = _load_pem(path, lambda data: serialization.load_pem_private_key(data, password=None))
    algorithm_of(key)
    return cast(PrivateKey, key)


def _load_pem(path: Path, loader: Callable[[bytes], _T]) -> _T:
    """``loader`` applied to the file; PkiError naming the file when it is unreadable or no PEM
    (a hand-edited or truncated PKI must not surface as a bare ValueError from cryptography)."""
    try:
        return loader(path.read_bytes())
    except OSError as exc:
        raise PkiError(f"unreadable {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        reason = str(exc).split(". See ")[0]  # cryptography appends a FAQ link
        raise PkiError(f"{path}: not a usable PEM file ({reason})") from None


def generate_key(algorithm: Algorithm) -> PrivateKey:
    if algorithm == "secp521r1":
        return ec.generate_private_key(ec.SECP521R1())
    if algorithm == "ed448":
        return ed448.Ed448PrivateKey.generate()
    raise PkiError(f"unknown algorithm {algorithm!r}; choose one of {', '.join(ALGORITHMS)}")


def signing_hash(key: PrivateKey) -> hashes.SHA512 | None:
    """Hash for certificate signatures: SHA-512 for ECDSA (V2G20-2673); none for Ed448."""
    return hashes.SHA512() if isinstance(key, ec.EllipticCurvePrivateKey) else None


def load_manifest(directory: Path | str) -> Manifest:
    """Read ``DIR/manifest.json``; PkiError if it is missing, incomplete or points nowhere."""
    directory = Path(directory)
    try:
        raw = json.loads((directory / MANIFEST).read_text())
    except FileNotFoundError:
        raise PkiError(f"no PKI in {directory} (run: mcscomm certs init {directory})") from None
    except (OSError, ValueError) as exc:
        raise PkiError(f"unreadable {directory / MANIFEST}: {exc}") from None
    roles: dict[str, Role] = {}
    for name in (*LEAF_ROLES, *ROOT_ROLES):
        entry = raw.get(name) if isinstance(raw, dict) else None
        if not isinstance(entry, dict) or "cert" not in entry:
            raise PkiError(f"{directory / MANIFEST}: role {name!r} missing")
        files = {k: directory / str(v) for k, v in entry.items() if k in ("cert", "key", "chain")}
        if name in LEAF_ROLES and not {"key", "chain"} <= files.keys():
            raise PkiError(f"{directory / MANIFEST}: role {name!r} needs cert, key and chain")
        for path in files.values():
            if not path.is_file():
                raise PkiError(f"{directory / MANIFEST}: {name} file {path} does not exist")
        roles[name] = Role(**files)
    return Manifest(directory=directory, roles=roles)


def _name(cn: str, dc: str, defaults: Mapping[str, Any]) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, str(defaults["organization"])),
            x509.NameAttribute(NameOID.COUNTRY_NAME, str(defaults["country"])),
            x509.NameAttribute(NameOID.DOMAIN_COMPONENT, dc),
        ]
    )


def _issue(
    spec: Mapping[str, Any],
    subject: x509.Name,
    key: PrivateKey,
    issuer: tuple[x509.Name, PrivateKey] | None,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> x509.Certificate:
    issuer_name, issuer_key = issuer if issuer else (subject, key)
    is_ca = "path_length" in spec
    public = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(
            x509.BasicConstraints(ca=is_ca, path_length=spec.get("path_length")), critical=True
        )
        .add_extension(
            x509.KeyUsage(
                digital_signature=not is_ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=is_ca,
                crl_sign=is_ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )
    if spec.get("eku"):
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([_EKU[name] for name in spec["eku"]]), critical=False
        )
    return builder.sign(issuer_key, signing_hash(issuer_key))


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def init_pki(
    directory: Path | str,
    algorithm: Algorithm = "secp521r1",
    days: int = 365,
    force: bool = False,
    *,
    now: dt.datetime | None = None,
    leaf_validity: tuple[dt.datetime, dt.datetime] | None = None,
    profile: Path | None = None,
) -> Manifest:
    """Create a complete PKI in ``directory`` and return its manifest.

    Refuses (PkiExists) if ``directory`` already holds a manifest, unless ``force``.
    Certificates are valid from ``now - 1 h`` (clock skew between peers) for ``days`` days;
    ``leaf_validity`` overrides the four leaves' dates, so tests can make expired or
    not-yet-valid leaves under otherwise valid CAs.
    """
    directory = Path(directory)
    if algorithm not in ALGORITHMS:
        raise PkiError(f"unknown algorithm {algorithm!r}; choose one of {', '.join(ALGORITHMS)}")
    if not 1 <= days <= MAX_DAYS:
        raise PkiError(f"--days must be between 1 and {MAX_DAYS}, not {days}")
    if directory.exists() and not directory.is_dir():
        raise PkiError(f"{directory} exists and is not a directory")
    if (directory / MANIFEST).exists() and not force:
        raise PkiExists(f"{directory} already holds a PKI; use --force to replace it")
    prof = load_profile(profile)
    start = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(hours=1)
    end = start + dt.timedelta(days=days)

    # Generate into a private staging directory, then install it in one rename when DIR is new
    # or empty: concurrent first uses (ensure_pki from parallel processes) never see a mix of
    # two PKIs' certificates and keys.
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.staging-", dir=directory.parent))
    except OSError as exc:
        raise PkiError(f"cannot create {directory}: {exc.strerror or exc}") from None
    try:
        _generate(staging, algorithm, start, end, leaf_validity, prof, profile)
        _install(staging, directory, force)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return load_manifest(directory)


def _install(staging: Path, directory: Path, force: bool) -> None:
    try:
        os.rename(staging, directory)  # atomic; also replaces an empty directory
        return
    except OSError:
        pass
    if (directory / MANIFEST).exists() and not force:
        raise PkiExists(f"{directory} already holds a PKI; use --force to replace it")
    # DIR holds other files (or an old PKI with --force): replace file by file, manifest last.
    names = sorted(p.name for p in staging.iterdir() if p.name != MANIFEST)
    try:
        for name in [*names, MANIFEST]:
            os.replace(staging / name, directory / name)
    except OSError as exc:
        raise PkiError(f"cannot write the PKI into {directory}: {exc}") from None


def _generate(
    directory: Path,
    algorithm: Algorithm,
    start: dt.datetime,
    end: dt.datetime,
    leaf_validity: tuple[dt.datetime, dt.datetime] | None,
    prof: Mapping[str, Any],
    profile: Path | None,
) -> None:
    defaults = prof["defaults"]
    specs: dict[str, dict[str, Any]] = prof["cert"]
    issued: dict[str, tuple[x509.Certificate, PrivateKey]] = {}

    def issue(name: str) -> tuple[x509.Certificate, PrivateKey]:
        if name in issued:
            return issued[name]
        spec = specs[name]
        parent = None if spec["issuer"] == "self" else issue(str(spec["issuer"]))
        key = generate_key(algorithm)
        is_leaf = "path_length" not in spec
        nb, na = leaf_validity if (is_leaf and leaf_validity) else (start, end)
        cert = _issue(
            spec,
            _name(str(spec["cn"]), str(spec["dc"]), defaults),
            key,
            (parent[0].subject, parent[1]) if parent else None,
            nb,
            na,
        )
        issued[name] = (cert, key)
        return cert, key

    manifest: dict[str, dict[str, str]] = {}
    for name, spec in specs.items():
        cert, key = issue(name)
        (directory / f"{name}.pem").write_bytes(_pem(cert))
        _write_private(
            directory / f"{name}.key",
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
        role = spec.get("manifest")
        if role in ROOT_ROLES:
            manifest[role] = {"cert": f"{name}.pem"}
        elif role in LEAF_ROLES:
            chain = [cert]
            issuer = str(spec["issuer"])
            while specs[issuer]["issuer"] != "self":
                chain.append(issue(issuer)[0])
                issuer = str(specs[issuer]["issuer"])
            (directory / f"{name}.chain.pem").write_bytes(b"".join(_pem(c) for c in chain))
            manifest[role] = {
                "cert": f"{name}.pem",
                "key": f"{name}.key",
                "chain": f"{name}.chain.pem",
            }
    missing = set(LEAF_ROLES + ROOT_ROLES) - manifest.keys()
    if missing:
        raise PkiError(f"profile {profile or profile_path()} lacks roles {sorted(missing)}")
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def ensure_pki(directory: Path | str | None = None, algorithm: Algorithm = "secp521r1") -> Manifest:
    """Load the PKI in ``directory`` (default: :func:`default_pki_dir`), creating it on first use.

    An existing PKI of the other algorithm family is an error, not silently replaced.
    """
    directory = Path(directory) if directory is not None else default_pki_dir(algorithm)
    if not (directory / MANIFEST).exists():
        try:
            return init_pki(directory, algorithm)
        except PkiExists:
            pass  # another process created it first: use theirs
    manifest = load_manifest(directory)
    if manifest.algorithm != algorithm:
        raise PkiError(f"{directory} holds a {manifest.algorithm} PKI, not {algorithm}")
    return manifest

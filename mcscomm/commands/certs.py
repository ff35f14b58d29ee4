"""``mcscomm certs``: create and inspect the ISO 15118-20 test PKI."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from mcscomm.security import pki
from mcscomm.security.chain import verify_chain
from mcscomm.security.errors import SecurityError

HELP = "create (init) and inspect (show) the test PKI: V2G/CPO, CPS, OEM and MO chains"


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    init = sub.add_parser("init", help="generate a PKI into DIR and write DIR/manifest.json")
    init.add_argument("dir", type=Path, help="target directory")
    init.add_argument("--algorithm", choices=pki.ALGORITHMS, default="secp521r1")
    init.add_argument("--days", type=int, default=365, help="validity in days (default 365)")
    init.add_argument("--force", action="store_true", help="replace an existing PKI in DIR")
    show = sub.add_parser("show", help="list the roles of a PKI and check every chain")
    show.add_argument("dir", type=Path, help="PKI directory (holding manifest.json)")


def run(args: argparse.Namespace) -> int:
    try:
        if args.action == "init":
            manifest = pki.init_pki(args.dir, args.algorithm, args.days, args.force)
            print(f"created {manifest.algorithm} PKI in {args.dir} ({args.dir / pki.MANIFEST})")
            return 0
        return _show(pki.load_manifest(args.dir))
    except SecurityError as exc:
        print(f"mcscomm certs {args.action}: {exc}", file=sys.stderr)
        return 1


def _cn(name: x509.Name) -> str:
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else name.rfc4514_string()


def _show(manifest: pki.Manifest) -> int:
    now = dt.datetime.now(dt.UTC)
    print(f"PKI {manifest.directory} ({manifest.algorithm})")
    failures = 0
    for role in (*pki.ROOT_ROLES, *pki.LEAF_ROLES):
        cert = manifest.certificate(role)
        fingerprint = cert.fingerprint(hashes.SHA256()).hex()[:16]
        print(
            f"  {role:14} CN={_cn(cert.subject)}  issuer CN={_cn(cert.issuer)}  "
            f"valid {cert.not_valid_before_utc:%Y-%m-%d} .. {cert.not_valid_after_utc:%Y-%m-%d}  "
            f"sha256 {fingerprint}…"
        )
        if role in pki.LEAF_ROLES:
            root_role = pki.ROOT_OF[role]
            try:
                verify_chain(manifest.chain(role), manifest.certificate(root_role), now)
                print(f"  {'':14} chain OK -> {root_role}")
            except SecurityError as exc:
                failures += 1
                print(f"  {'':14} chain FAILED -> {root_role}: {exc}")
    try:
        manifest.load_all()  # the keys, which the listing above does not touch
    except SecurityError as exc:
        failures += 1
        print(f"  files FAILED: {exc}")
    if failures:
        print(f"mcscomm certs show: {failures} problem(s) in {manifest.directory}", file=sys.stderr)
    return 1 if failures else 0

#!/usr/bin/env python3
"""Security benchmark: -20 XML signatures and TLS 1.3 handshakes, as ratios to same-run baselines.

* per signed part and family: ``xmldsig.sign`` and ``xmldsig.verify`` (canonicalisation through
  the XML codec, digest, signature, and for verify the signer's chain validation) and
  ``xmldsig.check_signature`` (verify with an already trusted key, no chain) against raw
  ``cryptography`` sign/verify of the same canonical SignedInfo bytes;
* TLS: a mutually authenticated -20 handshake with our contexts (P-521 or Ed448 certificates,
  secp521r1/x448 key exchange) against a default Python ``ssl`` handshake (P-256 server
  certificate, no client certificate, OpenSSL's default TLS 1.3 choices), both over loopback TCP.

    python tools/bench_security.py [--quick]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import socket
import ssl
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448
from cryptography.x509.oid import NameOID

from mcscomm.codec import XmlCodec
from mcscomm.messages import (
    AbsolutePriceSchedule,
    PriceRule,
    PriceRuleStack,
    PriceRuleStackList,
)
from mcscomm.messages.common_messages import (
    ContractCertificateChain,
    Dynamic_SMDTControlMode,
    PnC_AReqAuthorizationMode,
    SignedCertificateChain,
    SignedInstallationData,
    SignedMeteringData,
    SubCertificates,
)
from mcscomm.messages.common_types import MeterInfo
from mcscomm.messages.enums import EcdhCurve
from mcscomm.messages.rational import RationalNumber
from mcscomm.security import pki, tls, xmldsig


def _per_call(fn: Callable[[], object], repeat: int) -> float:
    """Median seconds per call over ``repeat`` calls (after one warm-up)."""
    fn()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _parts(m: pki.Manifest) -> dict[str, tuple[object, str, str]]:
    """part name -> (fragment, signer key name, trust root role)."""
    leaf, *subs = m.chain("contract_leaf")
    contract = ContractCertificateChain(
        certificate=_der(leaf),
        sub_certificates=SubCertificates(certificate=[_der(c) for c in subs]),
    )
    oem, *oem_subs = m.chain("oem_prov_leaf")
    return {
        "PnC_AReqAuthorizationMode": (
            PnC_AReqAuthorizationMode(
                id="a1", gen_challenge=bytes(16), contract_certificate_chain=contract
            ),
            "contract_leaf",
            "mo_root",
        ),
        "SignedMeteringData": (
            SignedMeteringData(
                id="m1",
                session_id=bytes(8),
                meter_info=MeterInfo(meter_id="METER", charged_energy_reading_wh=1),
                control_mode=Dynamic_SMDTControlMode(),
            ),
            "contract_leaf",
            "mo_root",
        ),
        "OEMProvisioningCertificateChain": (
            SignedCertificateChain(
                id="o1",
                certificate=_der(oem),
                sub_certificates=SubCertificates(certificate=[_der(c) for c in oem_subs]),
            ),
            "oem_prov_leaf",
            "oem_root",
        ),
        "SignedInstallationData": (
            SignedInstallationData(
                id="s1",
                contract_certificate_chain=contract,
                ecdh_curve=EcdhCurve.SECP521,
                dh_public_key=bytes(133),
                secp521_encrypted_private_key=bytes(94),
            ),
            "cps_leaf",
            "v2g_root",
        ),
        "AbsolutePriceSchedule": (
            AbsolutePriceSchedule(
                id="p1",
                time_anchor=0,
                price_schedule_id=1,
                currency="EUR",
                language="ENG",
                price_algorithm="urn:iso:std:iso:15118:-20:PriceAlgorithm:1-Power",
                price_rule_stacks=PriceRuleStackList(
                    price_rule_stack=[
                        PriceRuleStack(
                            duration=0,
                            price_rule=[
                                PriceRule(
                                    energy_fee=RationalNumber(39, -2),
                                    power_range_start=RationalNumber(0, 0),
                                )
                            ],
                        )
                    ]
                ),
            ),
            "mo_sub_ca2",
            "mo_root",
        ),
    }


def bench_signatures(base: Path, quick: bool) -> dict[str, object]:
    codec = XmlCodec()
    repeat = 20 if quick else 200
    out: dict[str, object] = {}
    for family in pki.ALGORITHMS:
        m = pki.init_pki(base / family, family)
        for name, (fragment, signer, root_role) in _parts(m).items():
            if signer == "mo_sub_ca2":
                key, chain = m.extra_key(signer), m.chain("contract_leaf")[1:]
            else:
                key, chain = m.private_key(signer), m.chain(signer)
            root = m.certificate(root_role)
            signature = xmldsig.sign([fragment], key, codec)
            parts = {str(getattr(fragment, "id")): fragment}  # noqa: B009
            signed_info = codec.canonicalize(signature.signed_info)
            public: Any = chain[0].public_key()

            def raw_sign(data: bytes = signed_info, k: Any = key) -> bytes:
                if isinstance(k, ed448.Ed448PrivateKey):
                    return k.sign(data)
                return bytes(k.sign(data, ec.ECDSA(hashes.SHA512())))

            raw_signature = raw_sign()

            def raw_verify(
                data: bytes = signed_info, p: Any = public, sig: bytes = raw_signature
            ) -> None:
                if isinstance(p, ed448.Ed448PublicKey):
                    p.verify(sig, data)
                else:
                    p.verify(sig, data, ec.ECDSA(hashes.SHA512()))

            sign_s = _per_call(partial(xmldsig.sign, [fragment], key, codec), repeat)
            verify_s = _per_call(
                partial(xmldsig.verify, signature, parts, chain, root, codec), repeat
            )
            trusted_s = _per_call(
                partial(xmldsig.check_signature, signature, parts, public, codec), repeat
            )
            raw_sign_s = _per_call(raw_sign, repeat)
            raw_verify_s = _per_call(raw_verify, repeat)
            prefix = f"security.xmldsig.{family}.{name}"
            out[f"{prefix}.sign_us"] = round(sign_s * 1e6, 1)
            out[f"{prefix}.verify_us"] = round(verify_s * 1e6, 1)
            out[f"{prefix}.sign_ratio_vs_raw"] = round(sign_s / raw_sign_s, 2)
            out[f"{prefix}.verify_ratio_vs_raw"] = round(verify_s / raw_verify_s, 2)
            out[f"{prefix}.verify_trusted_key_us"] = round(trusted_s * 1e6, 1)
            out[f"{prefix}.verify_trusted_key_ratio_vs_raw"] = round(trusted_s / raw_verify_s, 2)
    return out


def _default_contexts(base: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """Python's defaults: a P-256 server certificate, no client authentication."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = base / "default.pem", base / "default.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_path, key_path)
    client = ssl.create_default_context(cafile=str(cert_path))
    client.check_hostname = False
    return server, client


def _handshakes(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext, n: int) -> float:
    """Median seconds for connect + TLS handshake + one byte echoed, over loopback TCP."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        for _ in range(n + 1):
            conn, _ = listener.accept()
            try:
                with server_ctx.wrap_socket(conn, server_side=True) as tls_conn:
                    tls_conn.sendall(tls_conn.recv(1))
            except (OSError, ssl.SSLError):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()

    def one() -> None:
        with (
            socket.create_connection(("127.0.0.1", port)) as raw,
            client_ctx.wrap_socket(raw, server_hostname=None) as conn,
        ):
            conn.sendall(b"x")
            conn.recv(1)

    seconds = _per_call(one, n)
    thread.join(5)
    listener.close()
    return seconds


def bench_tls(base: Path, quick: bool) -> dict[str, object]:
    n = 50 if quick else 300
    out: dict[str, object] = {}
    default_s = _handshakes(*_default_contexts(base), n)
    out["security.tls.default_python_handshake_ms"] = round(default_s * 1e3, 2)
    for family in pki.ALGORITHMS:
        m = pki.init_pki(base / f"tls-{family}", family)
        ours = _handshakes(tls.secc_context(m), tls.evcc_context(m), n)
        out[f"security.tls.{family}.mutual_handshake_ms"] = round(ours * 1e3, 2)
        out[f"security.tls.{family}.ratio_vs_default"] = round(ours / default_s, 2)
    return out


def run(quick: bool) -> dict[str, object]:
    """Figures for ``tools/bench.py`` (keys prefixed ``security.``)."""
    with tempfile.TemporaryDirectory(prefix="mcscomm-bench-security-") as tmp:
        base = Path(tmp)
        return {**bench_signatures(base, quick), **bench_tls(base, quick)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    figures = run(args.quick)
    for key, value in figures.items():
        print(f"{key}: {value}")
    print(json.dumps(figures, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Interop runs of mcscomm against Josev (PyPI ``iso15118``, the EcoG-io/SwitchEV -20 stack).

What it does, in order (see docs/interop.md):

* ``setup``: installs Josev into its OWN venv under ``~/.cache/mcscomm/interop/josev-venv``
  (never into mcscomm's venv: Josev pins pydantic 1 and starts a Java EXI codec, EXIficient,
  through py4j; Java 17+ must be on PATH).
* ``run SCENARIO``: builds two network namespaces joined by a veth pair (Josev's SDP needs an
  interface with an IPv6 link-local address and multicast, which ``lo`` lacks), sniffs the veth
  with an AF_PACKET socket, runs one -20 DC or DC_BPT session and then checks every V2GTP frame
  seen on the wire with mcscomm's EXI codec: decode, re-encode, compare bytes.

  - ``josev-josev``: Josev EVCC <-> Josev SECC (capture-and-decode: does our codec read and
    reproduce, byte for byte, what an independent EXI implementation writes?)
  - ``mcscomm-secc``: Josev EVCC -> ``mcscomm secc`` (lenient profile, plain TCP, EXI)
  - ``mcscomm-evcc``: ``mcscomm evcc`` -> Josev SECC
  - ``all``: the three in turn.

  ``--tls`` runs the mcscomm scenarios over TLS 1.3 with mutual authentication (mcscomm's test
  PKI copied into Josev's file layout); the frames are then checked from mcscomm's trace.

* ``decode FILE``: analyses a saved capture again (``capture.jsonl`` of a run).

Everything runs as root (namespaces, raw sockets) and only inside namespaces this script
creates (``mcsi-secc``, ``mcsi-evcc``); ``netns down`` removes them. Exit status 0 only if every
requested scenario passed. Nothing of Josev is imported into this process: Josev runs as a
subprocess of its own interpreter.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("MCSCOMM_INTEROP_CACHE", Path.home() / ".cache/mcscomm/interop"))
JOSEV_VENV = CACHE / "josev-venv"
# The version this tool was written and checked against; override with --josev-version.
JOSEV_VERSION = "0.31.2"
# iso15118 0.31.2 imports aiofile (evcc/evcc_config.py) without declaring it.
JOSEV_EXTRA = ["aiofile"]

NS_SECC, NS_EVCC = "mcsi-secc", "mcsi-evcc"
IF_SECC, IF_EVCC = "mcsi-s", "mcsi-e"
SCENARIOS = ("josev-josev", "mcscomm-secc", "mcscomm-evcc")

# V2GTP payload types with EXI bodies (facts §1.2) -> name used in reports.
EXI_PAYLOADS = {0x8001: "sap", 0x8002: "common", 0x8004: "dc"}


# --------------------------------------------------------------------------- small helpers


def log(text: str) -> None:
    print(f"[interop] {text}", flush=True)


def sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=check, text=True, capture_output=True)


def josev_python() -> Path:
    return JOSEV_VENV / "bin" / "python"


def josev_package() -> Path:
    out = sh(
        str(josev_python()), "-c", "import iso15118, os; print(os.path.dirname(iso15118.__file__))"
    )
    return Path(out.stdout.strip())


# --------------------------------------------------------------------------- setup


def cmd_setup(args: argparse.Namespace) -> int:
    if shutil.which("java") is None:
        log("java not found: Josev's EXI codec is a Java jar (apt-get install openjdk-17-jre)")
        return 2
    if not josev_python().exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        log(f"creating {JOSEV_VENV}")
        sh(sys.executable, "-m", "venv", str(JOSEV_VENV))
    pip = [str(josev_python()), "-m", "pip", "install", "-q"]
    log(f"installing iso15118=={args.josev_version} (+ {', '.join(JOSEV_EXTRA)}) into the venv")
    done = subprocess.run([*pip, f"iso15118=={args.josev_version}", *JOSEV_EXTRA], check=False)
    if done.returncode != 0:
        log("pip install failed")
        return 2
    log(f"Josev at {josev_package()}")
    return 0


def ensure_josev() -> None:
    if not josev_python().exists():
        raise SystemExit(f"Josev venv missing: run `{sys.argv[0]} setup` first")


# --------------------------------------------------------------------------- namespaces


def netns_up() -> dict[str, str]:
    """Create the two namespaces and the veth pair (idempotent); return link-local addresses."""
    have = sh("ip", "netns", "list").stdout
    if NS_SECC not in have or NS_EVCC not in have:
        netns_down()
        sh("ip", "netns", "add", NS_SECC)
        sh("ip", "netns", "add", NS_EVCC)
        sh("ip", "link", "add", IF_SECC, "type", "veth", "peer", "name", IF_EVCC)
        sh("ip", "link", "set", IF_SECC, "netns", NS_SECC)
        sh("ip", "link", "set", IF_EVCC, "netns", NS_EVCC)
        for ns, iface in ((NS_SECC, IF_SECC), (NS_EVCC, IF_EVCC)):
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", ns, "link", "set", iface, "up")
    addrs: dict[str, str] = {}
    deadline = time.monotonic() + 10
    for ns, iface in ((NS_SECC, IF_SECC), (NS_EVCC, IF_EVCC)):
        while True:
            # wait until duplicate address detection is over: a tentative address cannot bind
            out = sh("ip", "-n", ns, "-6", "-j", "addr", "show", "dev", iface).stdout
            infos = [a for i in json.loads(out or "[]") for a in i.get("addr_info", [])]
            ready = [
                a["local"]
                for a in infos
                if a.get("scope") == "link" and not a.get("tentative", False)
            ]
            if ready:
                addrs[iface] = ready[0]
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"no link-local address on {iface} in {ns}")
            time.sleep(0.2)
    return addrs


def netns_down() -> None:
    for ns in (NS_SECC, NS_EVCC):
        sh("ip", "netns", "del", ns, check=False)


def cmd_netns(args: argparse.Namespace) -> int:
    if args.action == "up":
        for iface, addr in netns_up().items():
            print(f"{iface}: {addr}")
    else:
        netns_down()
    return 0


# --------------------------------------------------------------------------- capture


def cmd_sniff(args: argparse.Namespace) -> int:
    """Internal: run inside a namespace; write every IPv6 TCP/UDP packet on IF as JSON Lines."""
    eth_p_all = 0x0003
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(eth_p_all))
    sock.bind((args.iface, 0))
    sock.settimeout(0.2)
    stop = False

    def on_term(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    with open(args.out, "w", encoding="ascii") as out:
        print("ready", flush=True)
        while not stop:
            try:
                data = sock.recv(65535)
            except TimeoutError:
                continue
            # Ethernet II + IPv6 only (everything -20 uses on the link)
            if len(data) < 54 or data[12:14] != b"\x86\xdd" or data[20] not in (6, 17):
                continue
            out.write(json.dumps({"t": time.time(), "hex": data.hex()}) + "\n")
            out.flush()
    return 0


@dataclass
class Packet:
    t: float
    proto: int  # 6 TCP, 17 UDP
    src: str
    sport: int
    dst: str
    dport: int
    seq: int = 0
    flags: int = 0
    payload: bytes = b""


def parse_packet(t: float, raw: bytes) -> Packet | None:
    ip = raw[14:]
    if len(ip) < 40 or ip[0] >> 4 != 6:
        return None
    next_header, plen = ip[6], struct.unpack(">H", ip[4:6])[0]
    src = socket.inet_ntop(socket.AF_INET6, ip[8:24])
    dst = socket.inet_ntop(socket.AF_INET6, ip[24:40])
    body = ip[40 : 40 + plen]
    if next_header == 6 and len(body) >= 20:
        sport, dport, seq = struct.unpack(">HHI", body[:8])
        offset = (body[12] >> 4) * 4
        return Packet(t, 6, src, sport, dst, dport, seq, body[13], body[offset:])
    if next_header == 17 and len(body) >= 8:
        sport, dport = struct.unpack(">HH", body[:4])
        return Packet(t, 17, src, sport, dst, dport, payload=body[8:])
    return None


@dataclass
class Stream:
    """One direction of one TCP connection, reassembled by sequence number."""

    src: str
    sport: int
    dst: str
    dport: int
    isn: int | None = None
    segments: dict[int, tuple[float, bytes]] = field(default_factory=dict)

    def add(self, p: Packet) -> None:
        if p.flags & 0x02:  # SYN: data starts at ISN + 1
            self.isn = p.seq
        if p.payload and p.seq not in self.segments:  # identical retransmissions dropped
            self.segments[p.seq] = (p.t, p.payload)

    def chunks(self) -> Iterator[tuple[float, bytes]]:
        """Contiguous payload in order (overlaps trimmed); stops at the first hole."""
        if not self.segments:
            return
        start = min(self.segments) if self.isn is None else (self.isn + 1) & 0xFFFFFFFF
        pos = start
        for seq in sorted(self.segments, key=lambda s: (s - start) & 0xFFFFFFFF):
            t, data = self.segments[seq]
            rel, at = (seq - start) & 0xFFFFFFFF, (pos - start) & 0xFFFFFFFF
            if rel > at:
                raise ValueError(f"hole in TCP stream {self.sport}->{self.dport} at {at}")
            data = data[at - rel :]
            if data:
                pos = (pos + len(data)) & 0xFFFFFFFF
                yield t, data


@dataclass
class WireFrame:
    t: float
    direction: str  # "EVCC->SECC" or "SECC->EVCC"
    payload_type: int
    payload: bytes


def load_capture(path: Path) -> list[Packet]:
    packets = []
    with open(path, encoding="ascii") as f:
        for line in f:
            rec = json.loads(line)
            p = parse_packet(rec["t"], bytes.fromhex(rec["hex"]))
            if p is not None:
                packets.append(p)
    return packets


def v2g_frames(packets: list[Packet]) -> tuple[list[WireFrame], list[dict[str, Any]]]:
    """V2GTP frames of every TCP connection to/from the SECC's port, and SDP datagrams.

    A TLS connection carries records, not V2GTP: it is left out (see :func:`trace_frames`)."""
    from mcscomm.v2gtp import FrameDecoder

    sdp = []
    streams: dict[tuple[str, int, str, int], Stream] = {}
    secc_ports: set[int] = set()
    for p in packets:
        if p.proto == 17 and 15118 in (p.sport, p.dport) and p.payload[:2] == b"\x01\xfe":
            sdp.append({"t": p.t, "src": p.src, "dst": p.dst, "hex": p.payload.hex()})
        elif p.proto == 6:
            if p.flags & 0x12 == 0x12:  # SYN+ACK comes from the server
                secc_ports.add(p.sport)
            key = (p.src, p.sport, p.dst, p.dport)
            streams.setdefault(key, Stream(*key)).add(p)
    frames: list[WireFrame] = []
    for stream in streams.values():
        direction = "SECC->EVCC" if stream.sport in secc_ports else "EVCC->SECC"
        decoder = FrameDecoder(max_payload=1 << 20)
        chunks = list(stream.chunks())
        if chunks and chunks[0][1][:1] == b"\x16":  # a TLS handshake record, not V2GTP
            continue
        for t, chunk in chunks:
            for frame in decoder.feed(chunk):
                frames.append(WireFrame(t, direction, frame.payload_type, frame.payload))
    frames.sort(key=lambda f: f.t)
    return frames, sdp


@dataclass
class FrameCheck:
    index: int
    t: float
    direction: str
    payload_type: int
    size: int
    name: str = "?"
    decoded: bool = False
    element_exact: bool = False
    message_exact: bool = False
    error: str | None = None
    xml: str = ""
    hex: str = ""


def check_frames(frames: list[WireFrame]) -> list[FrameCheck]:
    """Decode every frame with mcscomm's ExiCodec and re-encode it, at two levels:

    * element level: EXI -> lxml tree -> EXI (the grammar and datatype coding alone);
    * message level: EXI -> typed mcscomm message (XSD-validated) -> EXI (what our endpoints
      actually do with a received message and how they would say it themselves).
    """
    from mcscomm.exi import ExiCodec

    codec = ExiCodec()
    out = []
    for i, f in enumerate(frames):
        c = FrameCheck(i, f.t, f.direction, f.payload_type, len(f.payload), hex=f.payload.hex())
        out.append(c)
        if f.payload_type not in EXI_PAYLOADS:
            c.error = f"payload type 0x{f.payload_type:04x} not checked"
            continue
        try:
            root = codec.decode_element(f.payload_type, f.payload)
            c.name = root.tag.rsplit("}", 1)[-1]
            c.xml = codec.to_xml(f.payload_type, f.payload)
            c.element_exact = codec.encode_element(root, f.payload_type) == f.payload
            message = codec.decode(f.payload_type, f.payload)
            c.decoded = True
            again = codec.encode(message)
            c.message_exact = again == f.payload
            if not c.message_exact:
                c.error = f"message re-encode differs: {again.hex()}"
        except Exception as exc:  # every codec failure is reported, never raised
            c.error = f"{type(exc).__name__}: {exc}"
    return out


def summarize(checks: list[FrameCheck], sdp: list[dict[str, Any]]) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for c in checks:
        counts[c.name] = counts.get(c.name, 0) + 1
    exi = [c for c in checks if c.payload_type in EXI_PAYLOADS]
    loop = [c for c in checks if c.name == "DC_ChargeLoopReq"]
    loop_rtt = []
    for c in loop:
        res = next((d for d in checks[c.index + 1 :] if d.name == "DC_ChargeLoopRes"), None)
        if res is not None:
            loop_rtt.append(res.t - c.t)
    return {
        "sdp_datagrams": len(sdp),
        "frames": len(checks),
        "exi_frames": len(exi),
        "decoded": sum(1 for c in exi if c.decoded),
        "element_byte_exact": sum(1 for c in exi if c.element_exact),
        "message_byte_exact": sum(1 for c in exi if c.message_exact),
        "failures": [
            {"index": c.index, "name": c.name, "direction": c.direction, "error": c.error}
            for c in exi
            if c.error is not None or not c.element_exact
        ],
        "messages": counts,
        "session_stopped": any(c.name == "SessionStopRes" for c in checks),
        "charge_loop_rtt_ms": (
            {
                "n": len(loop_rtt),
                "median": round(sorted(loop_rtt)[len(loop_rtt) // 2] * 1000, 1),
                "max": round(max(loop_rtt) * 1000, 1),
            }
            if loop_rtt
            else None
        ),
    }


def trace_frames(trace: Path) -> list[WireFrame]:
    """The EXI bodies mcscomm's endpoint recorded in its ``--trace`` (inside TLS the capture
    shows only ciphertext; the trace has each V2GTP payload as sent or received)."""
    frames = []
    with open(trace, encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            if rec.get("kind") == "message" and rec.get("exi"):
                direction = "EVCC->SECC" if rec["dir"] == "evcc->secc" else "SECC->EVCC"
                frames.append(
                    WireFrame(rec["t"], direction, rec["payload_type"], bytes.fromhex(rec["exi"]))
                )
    return frames


def analyse(capture: Path, out_dir: Path, trace: Path | None = None) -> dict[str, Any]:
    frames, sdp = v2g_frames(load_capture(capture))
    if trace is not None:
        frames = trace_frames(trace)
    checks = check_frames(frames)
    with open(out_dir / "frames.jsonl", "w", encoding="utf-8") as f:
        for c in checks:
            f.write(json.dumps(c.__dict__) + "\n")
    summary = summarize(checks, sdp)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def cmd_decode(args: argparse.Namespace) -> int:
    out_dir = args.out or args.capture.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        summary = analyse(args.capture, out_dir, args.trace)
    except (OSError, ValueError) as exc:  # unreadable file, hole in a TCP stream, bad JSON
        log(f"cannot analyse {args.capture}: {exc}")
        return 2
    print(json.dumps(summary, indent=2))
    return 0 if not summary["failures"] and summary["exi_frames"] else 1


# --------------------------------------------------------------------------- processes


class Proc:
    """A child started in its own process group, so that it and its children (Josev's Java
    gateway) are ended together, by this id only."""

    def __init__(self, name: str, cmd: list[str], log_path: Path, env: dict[str, str]) -> None:
        self.name = name
        self.log_path = log_path
        self.log = open(log_path, "w", encoding="utf-8")  # noqa: SIM115 (closed in stop())
        self.popen = subprocess.Popen(
            cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )

    def wait(self, timeout: float) -> int | None:
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> int | None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            if self.wait(5) is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.wait(5)
        self.log.close()
        return self.popen.returncode

    def text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_for(self, marker: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if marker in self.text():
                return True
            if self.popen.poll() is not None:
                return marker in self.text()
            time.sleep(0.2)
        return False


def in_ns(ns: str, *cmd: str) -> list[str]:
    return ["ip", "netns", "exec", ns, *cmd]


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    env["PYTHONPATH"] = str(REPO)  # mcscomm from this checkout (ignored by Josev's venv)
    env.update(extra)
    return env


# Josev's SECC started as its own ``iso15118.secc.main`` does, with one optional change: its
# simulated EVSE (SimEVSEController) reports a constant 1 V, so no EV that waits for the cable
# voltage to reach its battery voltage in DC_PreCharge (as ISO 15118-20 intends) can finish
# PreCharge against it. "tracking" lets the simulated EVSE take on the voltage and current the EV
# asks for, as a real power module would. Josev's own EVCC ignores the voltage, which is why its
# self-test passes with the stock simulator.
JOSEV_SECC_LAUNCHER = """
import asyncio, os, ssl

if os.environ.get("INTEROP_LIFT_P256_PIN") == "1":
    ssl.SSLContext.set_ecdh_curve = lambda self, name: None  # see JOSEV_LIFT_P256_PIN
from iso15118.secc import SECCHandler
from iso15118.secc.controller.interface import ServiceStatus
from iso15118.secc.controller.simulator import SimEVSEController
from iso15118.secc.secc_settings import Config
from iso15118.shared.exificient_exi_codec import ExificientEXICodec


class TrackingEVSE(SimEVSEController):
    async def send_charging_command(self, ev_target_voltage, ev_target_current, *args, **kw):
        if ev_target_voltage is not None:
            self.evse_data_context.present_voltage = ev_target_voltage
        if ev_target_current is not None:
            self.evse_data_context.present_current = ev_target_current


async def main():
    config = Config()
    config.load_envs()
    config.print_settings()
    tracking = os.environ.get("INTEROP_EVSE") == "tracking"
    evse = TrackingEVSE() if tracking else SimEVSEController()
    print("INTEROP_EVSE", "tracking" if tracking else "stock", flush=True)
    await evse.set_status(ServiceStatus.STARTING)
    await SECCHandler(exi_codec=ExificientEXICodec(), evse_controller=evse, config=config).start(
        config.iface
    )


asyncio.run(main())
"""


# Josev's get_ssl_context() ends with ``set_ecdh_curve("prime256v1")`` on both sides, while -20
# allows only secp521r1 and x448 key exchange (V2G20-2320, Table 7): no handshake with a -20
# stack can succeed. With --josev-p256-pin lift the harness makes that one call a no-op in
# Josev's processes, leaving Josev's suites, certificates and mutual authentication as they are.
JOSEV_LIFT_P256_PIN = "import ssl; ssl.SSLContext.set_ecdh_curve = lambda self, name: None; "


def josev_tls_env(args: argparse.Namespace) -> dict[str, str]:
    """Josev's TLS settings: TLS 1.3 with mutual authentication, our test PKI in its layout."""
    if not args.tls:
        return {}
    return {
        "ENABLE_TLS_1_3": "True",
        "PKI_PATH": str(args.out / "josev-pki") + "/",
        "INTEROP_LIFT_P256_PIN": "1" if args.josev_p256_pin == "lift" else "0",
    }


def josev_pki(args: argparse.Namespace) -> Path:
    """mcscomm's test PKI (P-521), and the same certificates in the file layout Josev reads
    (``iso15118_2/certs`` and ``private_keys`` under PKI_PATH, even for -20; keys unencrypted,
    so empty password files)."""
    from cryptography.hazmat.primitives.serialization import Encoding

    from mcscomm.security import pki

    ours: Path = args.out / "pki"
    manifest = pki.ensure_pki(ours)
    base = args.out / "josev-pki" / "iso15118_2"
    (base / "certs").mkdir(parents=True, exist_ok=True)
    (base / "private_keys").mkdir(parents=True, exist_ok=True)
    files = {
        "certs/v2gRootCACert.pem": manifest.roles["v2g_root"].cert,
        "certs/oemRootCACert.pem": manifest.roles["oem_root"].cert,
        "certs/cpoCertChain.pem": manifest.roles["secc_leaf"].chain,
        "certs/oemCertChain.pem": manifest.roles["oem_prov_leaf"].chain,
        "private_keys/seccLeaf.key": manifest.roles["secc_leaf"].key,
        "private_keys/oemLeaf.key": manifest.roles["oem_prov_leaf"].key,
    }
    files["private_keys/contractLeaf.key"] = manifest.roles["contract_leaf"].key
    for name, source in files.items():
        assert source is not None, name
        shutil.copyfile(source, base / name)
    # PnC: Josev reads the chains as DER, one file per certificate
    der = {
        "secc_leaf": ("seccLeafCert", "cpoSubCA2Cert", "cpoSubCA1Cert"),
        "oem_prov_leaf": ("oemLeafCert", "oemSubCA2Cert", "oemSubCA1Cert"),
        "contract_leaf": ("contractLeafCert", "moSubCA2Cert", "moSubCA1Cert"),
    }
    for role, names in der.items():
        for cert, stem in zip(manifest.chain(role), names, strict=True):
            (base / "certs" / f"{stem}.der").write_bytes(cert.public_bytes(Encoding.DER))
    for role, stem in (("v2g_root", "v2gRootCACert"), ("oem_root", "oemRootCACert")):
        cert = manifest.certificate(role)
        (base / "certs" / f"{stem}.der").write_bytes(cert.public_bytes(Encoding.DER))
    cert = manifest.certificate("mo_root")
    (base / "certs" / "moRootCACert.der").write_bytes(cert.public_bytes(Encoding.DER))
    for name in ("seccLeafPassword.txt", "oemLeafPassword.txt", "contractLeafPassword.txt"):
        (base / "private_keys" / name).write_text("")
    return ours


def josev_secc(out: Path, evse: str, tls_env: dict[str, str]) -> Proc:
    launcher = out / "josev_secc_launcher.py"
    launcher.write_text(JOSEV_SECC_LAUNCHER)
    env = base_env(
        NETWORK_INTERFACE=IF_SECC,
        PROTOCOLS="ISO_15118_20_DC",
        AUTH_MODES="EIM",
        LOG_LEVEL="DEBUG",
        MESSAGE_LOG_EXI="True",
        MESSAGE_LOG_JSON="True",
        INTEROP_EVSE=evse,
        **({"SECC_ENFORCE_TLS": "True", **tls_env} if tls_env else {}),
    )
    cmd = in_ns(NS_SECC, str(josev_python()), str(launcher))
    return Proc("josev-secc", cmd, out / "josev-secc.log", env)


# Josev's simulated EVSE offers 10-500 V, 10-100 A and 100-1000 W (DC_ChargeParameterDiscoveryRes);
# mcscomm's built-in trucks are 800 V class (580-870 V). This 400 V-class vehicle fits inside
# Josev's window, so the voltage negotiation itself can succeed.
TRUCK_400V = """
[truck]
name = "interop_400v"
description = "400 V-class test vehicle sized for Josev's simulated EVSE (10-500 V, 100 A)"
connector = "CCS"

[battery]
capacity_kwh = 60
internal_resistance_ohm = 0.05
ocv_curve = [[0.0, 330.0], [0.3, 365.0], [0.5, 375.0], [0.8, 395.0], [1.0, 410.0]]
initial_soc = 0.3
target_soc = 0.8

[voltage]
max_v = 450
min_v = 300

[charge]
max_current_a = 100
max_power_kw = 40

[discharge]
max_current_a = 100
max_power_kw = 40

[derating]
v2g_min_soc = 0.3
"""


JOSEV_EVCC_GAVE_UP = "maximum number of SDP retry cycles"


def josev_reason(log_text: str) -> str:
    """Josev's own words for why a session ended (its "Reason:" line), else its first ERROR."""
    lines = log_text.splitlines()
    for marker in ("Reason: ", "ERROR"):
        for line in lines:
            if marker in line:
                return (
                    line.split(marker, 1)[1].strip()[:300] if marker == "Reason: " else line[:300]
                )
    return "no reason in the log"


# Run in Josev's venv: why its pydantic model refused a message it had decoded. Josev logs only
# "V2GMessageValidationError ... : ." for these, so the harness asks the model itself.
JOSEV_EXPLAIN = """
import json, sys
from iso15118.shared.messages.iso15118_20 import common_messages, dc
name, body = next(iter(json.loads(sys.stdin.read()).items()))
for module in (common_messages, dc):
    cls = getattr(module, name.replace("DC_", "DC"), None)
    if cls is not None:
        try:
            cls.parse_obj(body)
            print(f"{name}: Josev's model accepts it")
        except Exception as exc:
            print(f"{name}: " + " ".join(str(exc).split()))
        break
else:
    print(f"{name}: no Josev model found")
"""


def josev_validation_detail(log_text: str) -> str | None:
    """The refused message and Josev's pydantic error, when Josev refused a decoded message."""
    decoded = None
    for line in log_text.splitlines():
        if "Decoded message (ns=" in line:
            decoded = line.split("Decoded message (ns=", 1)[1].split("): ", 1)[1]
        elif "where validation failed" in line and decoded is not None:
            done = subprocess.run(
                [str(josev_python()), "-c", JOSEV_EXPLAIN],
                input=decoded,
                capture_output=True,
                text=True,
                check=False,
            )
            return (done.stdout or done.stderr).strip()[:600]
    return None


def josev_evcc(out: Path, service: str, tls_env: dict[str, str]) -> Proc:
    tls = bool(tls_env)
    config = {
        "supportedProtocols": ["ISO_15118_20_DC"],
        "supportedEnergyServices": [service],
        "isCertInstallNeeded": False,
        "useTls": tls,
        "enforceTls": tls,
        "chargeLoopCycle": 10,
    }
    path = out / "josev-evcc-config.json"
    path.write_text(json.dumps(config, indent=2) + "\n")
    env = base_env(
        NETWORK_INTERFACE=IF_EVCC,
        LOG_LEVEL="DEBUG",
        MESSAGE_LOG_EXI="True",
        EVCC_CONFIG_PATH=str(path),
        **tls_env,
    )
    code = "from iso15118.evcc.main import run; run()"
    if tls_env.get("INTEROP_LIFT_P256_PIN") == "1":
        code = JOSEV_LIFT_P256_PIN + code
    return Proc(
        "josev-evcc", in_ns(NS_EVCC, str(josev_python()), "-c", code), out / "josev-evcc.log", env
    )


def mcscomm_cmd(
    command: str, *args: str, secc_control: str | None = None, secc_auth: str | None = None
) -> list[str]:
    """``mcscomm COMMAND --encoding exi ARGS``: the plain CLI speaking EXI on the wire, with
    ``secc_control`` / ``secc_auth`` as the SECC's ``--secc-control`` / ``--secc-auth`` offer."""
    cli = [sys.executable, "-c", "import sys; from mcscomm.cli import main; sys.exit(main())"]
    offer: list[str] = []
    if secc_control is not None:
        offer += ["--secc-control", secc_control]
    if secc_auth is not None:
        offer += ["--secc-auth", secc_auth]
    return [*cli, command, "--encoding", "exi", *offer, *args]


# --------------------------------------------------------------------------- scenarios


@dataclass
class Outcome:
    scenario: str
    ok: bool
    reason: str
    summary: dict[str, Any] | None = None


def run_scenario(name: str, args: argparse.Namespace, addrs: dict[str, str]) -> Outcome:
    out: Path = args.out / name
    out.mkdir(parents=True, exist_ok=True)
    capture = out / "capture.jsonl"
    sniffer = Proc(
        "sniffer",
        in_ns(
            NS_SECC, sys.executable, __file__, "_sniff", "--iface", IF_SECC, "--out", str(capture)
        ),
        out / "sniffer.log",
        base_env(),
    )
    procs = [sniffer]
    try:
        if not sniffer.wait_for("ready", 10):
            return Outcome(name, False, f"sniffer did not start: {sniffer.text()[-300:]}")
        ok, reason = _drive(name, args, addrs, out, procs)
    finally:
        time.sleep(0.5)
        codes = {p.name: p.stop() for p in reversed(procs)}
        (out / "exit_codes.json").write_text(json.dumps(codes) + "\n")
    trace = None
    if args.tls:
        side = "mcscomm-secc" if name == "mcscomm-secc" else "mcscomm-evcc"
        trace = out / f"{side}.trace.jsonl"
        if not trace.exists():
            return Outcome(name, ok, reason + " (TLS: no mcscomm trace to check frames)", None)
    summary = analyse(capture, out, trace)
    summary["frames_from"] = "mcscomm trace (inside TLS)" if trace else "wire capture"
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if ok and not summary["exi_frames"]:
        ok, reason = False, "no V2GTP frame captured"
    if ok and summary["failures"]:
        ok, reason = False, f"{len(summary['failures'])} frames failed the codec check"
    return Outcome(name, ok, reason, summary)


def _drive(
    name: str, args: argparse.Namespace, addrs: dict[str, str], out: Path, procs: list[Proc]
) -> tuple[bool, str]:
    timeout = float(args.timeout)
    tls_args = ["--tls", "on", "--certs", str(args.out / "pki")] if args.tls else ["--tls", "off"]
    if name in ("josev-josev", "mcscomm-evcc"):
        secc = josev_secc(out, args.josev_evse, josev_tls_env(args))
        procs.append(secc)
        if not secc.wait_for("UDP server started", 60):
            return False, f"Josev SECC did not start (see {secc.log_path})"
    else:
        listen = f"[{addrs[IF_SECC]}%{IF_SECC}]:{args.port}"
        cmd = mcscomm_cmd(
            "secc",
            "--profile",
            "lenient",
            *tls_args,
            "--listen",
            listen,
            "--sdp",
            "[::]:15118",
            "--sdp-interface",
            IF_SECC,
            "--sessions",
            "1",
            "--scenario",
            "none",
            "--trace",
            str(out / "mcscomm-secc.trace.jsonl"),
            secc_control=args.secc_control,
            secc_auth=args.secc_auth,
        )
        secc = Proc("mcscomm-secc", in_ns(NS_SECC, *cmd), out / "mcscomm-secc.log", base_env())
        procs.append(secc)
        if not secc.wait_for("SDP answering", 30):
            return False, f"mcscomm SECC did not start: {secc.text()[-400:]}"

    if name in ("josev-josev", "mcscomm-secc"):
        evcc = josev_evcc(out, args.service, josev_tls_env(args))
        procs.append(evcc)
        # Josev's EVCC exits after a clean SessionStop but stays up after it gives up
        gave_up = evcc.wait_for(JOSEV_EVCC_GAVE_UP, timeout)
        code = evcc.popen.poll()
        text = evcc.text()
        if code is None and not gave_up:
            return False, f"Josev EVCC did not finish in {timeout:.0f} s (see {evcc.log_path})"
        stopped = "SessionStopRes received" in text
        if name == "mcscomm-secc":
            secc_code = secc.wait(10)
            if stopped and secc_code != 0:
                return False, f"mcscomm SECC exit {secc_code}: {secc.text()[-400:]}"
        if not stopped:
            detail = josev_validation_detail(text)
            why = f"; refused {detail}" if detail else ""
            return False, f"Josev EVCC gave up: {josev_reason(text)}{why}"
        return True, "session completed (SessionStopRes)"

    if args.truck == "interop_400v":
        truck = str(out / "interop_400v.toml")
        Path(truck).write_text(TRUCK_400V.lstrip())
    else:
        truck = args.truck
    cmd = mcscomm_cmd(
        "evcc",
        "--profile",
        "lenient",
        *tls_args,
        "--discover",
        "--interface",
        IF_EVCC,
        "--service",
        args.service,
        "--control",
        args.control,
        "--auth",
        "eim",
        "--truck",
        truck,
        "--duration",
        str(args.duration),
        "--trace",
        str(out / "mcscomm-evcc.trace.jsonl"),
    )
    evcc = Proc("mcscomm-evcc", in_ns(NS_EVCC, *cmd), out / "mcscomm-evcc.log", base_env())
    procs.append(evcc)
    code = evcc.wait(timeout)
    if code is None:
        return False, f"mcscomm EVCC did not finish in {timeout:.0f} s"
    if code != 0:
        detail = josev_validation_detail(secc.text())
        why = f"; Josev SECC refused {detail}" if detail else ""
        return False, f"mcscomm EVCC exit {code}: {evcc.text().splitlines()[-1][:300]}{why}"
    return True, "session completed (mcscomm evcc exit 0)"


def cmd_run(args: argparse.Namespace) -> int:
    ensure_josev()
    if os.geteuid() != 0:
        log("needs root (network namespaces, raw sockets)")
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    names: tuple[str, ...] = SCENARIOS if args.scenario == "all" else (args.scenario,)
    if args.tls:
        # frames inside TLS are checked from mcscomm's trace, so one side must be mcscomm
        names = tuple(n for n in names if n != "josev-josev")
        if not names:
            log("--tls needs a scenario with an mcscomm endpoint")
            return 2
        josev_pki(args)
    addrs = netns_up()
    log(f"namespaces up: {addrs}")
    outcomes = []
    try:
        for name in names:
            log(f"--- {name} ({args.service}) -> {args.out / name}")
            outcome = run_scenario(name, args, addrs)
            outcomes.append(outcome)
            s = outcome.summary or {}
            log(
                f"{name}: {'PASS' if outcome.ok else 'FAIL'} — {outcome.reason}; "
                f"frames {s.get('exi_frames')} EXI, element byte-exact "
                f"{s.get('element_byte_exact')}, message byte-exact {s.get('message_byte_exact')}"
            )
            for failure in s.get("failures", [])[:5]:
                log(f"  frame {failure['index']} {failure['name']}: {failure['error']}")
    finally:
        if not args.keep_netns:
            netns_down()
    report = [o.__dict__ for o in outcomes]
    (args.out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return 0 if outcomes and all(o.ok for o in outcomes) else 1


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("setup", help="install Josev into its own venv under the cache dir")
    p.add_argument("--josev-version", default=JOSEV_VERSION)
    p.set_defaults(func=cmd_setup)
    p = sub.add_parser("netns", help="create or remove the two namespaces")
    p.add_argument("action", choices=("up", "down"))
    p.set_defaults(func=cmd_netns)
    p = sub.add_parser("run", help="run a scenario and check every frame on the wire")
    p.add_argument("scenario", choices=(*SCENARIOS, "all"))
    p.add_argument("--service", choices=("DC", "DC_BPT"), default="DC")
    p.add_argument("--control", choices=("scheduled", "dynamic"), default="scheduled")
    p.add_argument(
        "--secc-control",
        choices=("scheduled", "dynamic", "dynamic,scheduled"),
        help="control modes the mcscomm SECC offers, in order (default: as `mcscomm secc`)",
    )
    p.add_argument(
        "--secc-auth",
        choices=("eim", "pnc", "pnc,eim"),
        help="authorization services the mcscomm SECC offers (default: as `mcscomm secc`)",
    )
    p.add_argument(
        "--josev-evse",
        choices=("tracking", "stock"),
        default="tracking",
        help="Josev SECC's simulated EVSE: follows the EV's target voltage (default) or "
        "Josev's stock constant 1 V",
    )
    p.add_argument(
        "--truck",
        default="interop_400v",
        help="mcscomm EVCC truck: interop_400v (fits Josev's 500 V EVSE) or a mcscomm profile",
    )
    p.add_argument(
        "--tls",
        action="store_true",
        help="TLS 1.3 with mutual authentication (mcscomm's test PKI on both sides)",
    )
    p.add_argument(
        "--josev-p256-pin",
        choices=("lift", "keep"),
        default="lift",
        help="with --tls: neutralise Josev's set_ecdh_curve('prime256v1') (default) or keep it",
    )
    p.add_argument("--duration", type=float, default=3.0, help="mcscomm EVCC charge loop (s)")
    p.add_argument("--port", type=int, default=50000, help="mcscomm SECC TCP port")
    p.add_argument("--timeout", type=float, default=120.0, help="per session (s)")
    p.add_argument("--out", type=Path, default=CACHE / "runs" / time.strftime("%Y%m%dT%H%M%S"))
    p.add_argument("--keep-netns", action="store_true", help="leave the namespaces up")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("decode", help="re-check a saved capture.jsonl with mcscomm's EXI codec")
    p.add_argument("capture", type=Path)
    p.add_argument("--out", type=Path)
    p.add_argument("--trace", type=Path, help="take the frames from an mcscomm trace (TLS runs)")
    p.set_defaults(func=cmd_decode)
    p = sub.add_parser("_sniff", help=argparse.SUPPRESS)
    p.add_argument("--iface", required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_sniff)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())

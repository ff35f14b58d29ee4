"""SUT launchers: how the runner reaches the implementation under test.

* :class:`InProcessSecc` / :class:`InProcessEvcc` run our own sans-IO sessions in virtual time,
  optionally as one of the deliberately broken variants of :mod:`.faults`;
* :class:`RemoteSecc` connects to a real SECC (TCP, or TLS 1.3 with the PIXIT PKI);
* :class:`ListeningEvcc` listens for a real EVCC (and can start it per case with the PIXIT
  ``sut_command``).

Every launcher opens one :class:`~mcscomm.conformance.channel.Channel` per connection
(``open``), gives raw sockets to the TLS cases (``raw_connection``) and performs SDP
(``sdp_exchange`` for an SECC, ``sdp_request`` for an EVCC).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import shlex
import socket
import ssl
import subprocess
import threading
import time
from dataclasses import replace
from typing import Any

from mcscomm import sdp
from mcscomm.conformance import faults as faults_mod
from mcscomm.conformance.channel import Channel, InProcessChannel, SocketChannel, VirtualClock
from mcscomm.conformance.faults import Fault, LaxCodec
from mcscomm.conformance.model import Role
from mcscomm.conformance.pics import Pics
from mcscomm.conformance.tlsvariants import PkiSet, broken_evcc_context, broken_secc_context
from mcscomm.messages.enums import AuthorizationType, ControlMode, ServiceId
from mcscomm.security import tls
from mcscomm.v2gtp import build_frame


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"address must be HOST:PORT, not {address!r}")
    return host.strip("[]"), int(port)


class Sut:
    """Common interface (documentation only; launchers duck-type it)."""

    role: Role
    virtual: bool
    pics: Pics
    pkis: PkiSet | None

    def open(self, **wishes: Any) -> Channel:
        raise NotImplementedError

    def raw_connection(self) -> socket.socket:
        raise NotImplementedError

    def close(self) -> None:
        """Release sockets and processes."""


def _timings(fault: Fault | None) -> Any:
    from mcscomm.session.timings import Timings

    if fault is None or not fault.timings:
        return Timings()
    return replace(Timings(), **fault.timings)


# -- our own SECC ---------------------------------------------------------------------------
class InProcessSecc(Sut):
    """Our SeccConnection as the SUT (virtual time), optionally broken by ``fault``."""

    role = Role.SECC
    virtual = True

    def __init__(self, pics: Pics, pkis: PkiSet | None, fault: str | None = None) -> None:
        from mcscomm.power.profiles import load_charger
        from mcscomm.session.config import Profile, SeccConfig, SeccFaults, SessionStore

        self.pics = pics
        self.pkis = pkis
        self.fault = faults_mod.get(fault)
        self.clock = VirtualClock(0.0)
        f = self.fault
        self.config = SeccConfig(
            services=pics.service_ids(),
            control_modes=pics.control_mode_values(),
            auth_services=pics.auth_types(),
            certificate_installation=pics.certificate_installation,
            service_renegotiation=pics.service_renegotiation,
            profile=Profile.LENIENT if pics.negative_discharge else Profile.STRICT,
            negative_discharge=pics.negative_discharge,
            standby_allowed=pics.standby,
            charger=load_charger("mcs_1mw_bpt"),
            metering_interval_s=1.0 if pics.metering_confirmation else None,
            pki=pkis.good if pkis is not None else None,
            timings=_timings(f),
            store=SessionStore(),
            faults=f.secc if f is not None and f.secc is not None else SeccFaults(),
        )
        if f is not None and f.secc_config:
            self.config = dataclasses.replace(self.config, **f.secc_config)
        self._threads: list[threading.Thread] = []
        self._listeners: list[socket.socket] = []

    def open(self, **wishes: Any) -> Channel:
        from mcscomm.session.config import SessionStore
        from mcscomm.session.connection import SeccConnection

        f = self.fault
        codec = LaxCodec() if f is not None and f.lax_codec else None
        max_payload = (
            f.max_payload if f is not None and f.max_payload else self.pics.pixit.max_payload
        )
        config = self.config
        if f is not None and f.fresh_store:
            config = dataclasses.replace(config, store=SessionStore())
        conn = SeccConnection(
            config, now=self.clock.now, tls=True, codec=codec, max_payload=max_payload
        )
        to_sut = f.to_sut() if f is not None and f.to_sut is not None else None
        from_sut = f.from_sut() if f is not None and f.from_sut is not None else None
        pair = faults_mod.pair_tampers(f.name) if f is not None else None
        if pair is not None:
            to_sut, from_sut = pair
        return InProcessChannel(conn, self.clock, to_sut=to_sut, from_sut=from_sut)

    def sdp_exchange(self, datagram: bytes, timeout: float = 0.25) -> bytes | None:
        f = self.fault
        security = sdp.Security.NONE if f is not None and f.sdp == "no_tls" else sdp.Security.TLS
        server = sdp.SdpServer(("::1", 50000), security)
        quiet = logging.getLogger(sdp.__name__)
        was, quiet.disabled = quiet.disabled, True  # a refused datagram is the expected outcome
        try:
            answer = server.handle_datagram(datagram, ("::1", 40000))
        finally:
            quiet.disabled = was
        if answer is None and f is not None and f.sdp == "answer_malformed":
            return sdp.encode(
                sdp.SdpResponse(server.address, server.port, security, sdp.Transport.TCP)
            )
        return answer

    def raw_connection(self) -> socket.socket:
        """A TCP connection to a loopback TLS server running this SECC (real time)."""
        assert self.pkis is not None, "TLS cases need a PKI"
        f = self.fault
        manifest = self.pkis.good
        ctx = (
            broken_secc_context(manifest, f.tls)
            if f is not None and f.tls
            else tls.secc_context(manifest)
        )
        listener = socket.create_server(("127.0.0.1", 0))
        self._listeners.append(listener)
        config = dataclasses.replace(self.config)
        t = threading.Thread(target=_serve_tls_secc, args=(listener, ctx, config), daemon=True)
        t.start()
        self._threads.append(t)
        return socket.create_connection(listener.getsockname()[:2], timeout=5.0)

    def close(self) -> None:
        for listener in self._listeners:
            listener.close()
        for t in self._threads:
            t.join(timeout=5.0)


def _serve_tls_secc(listener: socket.socket, ctx: ssl.SSLContext, config: Any) -> None:
    from mcscomm.session.connection import SeccConnection

    listener.settimeout(5.0)
    try:
        raw, _ = listener.accept()
    except OSError:
        return
    raw.settimeout(3.0)
    try:
        s = ctx.wrap_socket(raw, server_side=True)
    except (ssl.SSLError, OSError):
        raw.close()
        return
    t0 = time.monotonic()
    secc = SeccConnection(config, now=0.0, tls=True)
    try:
        while not secc.closed:
            data = s.recv(65536)
            if not data:
                break
            secc.receive_data(data, time.monotonic() - t0)
            out = secc.data_to_send()
            if out:
                s.sendall(out)
    except (ssl.SSLError, OSError):
        pass
    finally:
        with contextlib.suppress(OSError):
            s.close()


# -- our own EVCC ---------------------------------------------------------------------------
class InProcessEvcc(Sut):
    """Our EvccConnection as the SUT (virtual time). ``open(service=..., control=..., auth=...,
    stop=..., duration_s=...)`` configures the truck for the case (a real EVCC is steered by
    what the tester SECC offers instead)."""

    role = Role.EVCC
    virtual = True

    def __init__(self, pics: Pics, pkis: PkiSet | None, fault: str | None = None) -> None:
        self.pics = pics
        self.pkis = pkis
        self.fault = faults_mod.get(fault)
        self.clock = VirtualClock(0.0)
        self._last: InProcessChannel | None = None
        self._threads: list[threading.Thread] = []

    def _config(self, wishes: dict[str, Any]) -> Any:
        from mcscomm.power.profiles import load_truck
        from mcscomm.session.config import EvccConfig, EvccFaults, Profile

        f = self.fault
        pics = self.pics
        service = (
            wishes.get("service")
            or ServiceId[next(s for s in ("MCS_BPT", "MCS", "DC_BPT", "DC") if s in pics.services)]
        )
        control = wishes.get("control") or (
            ControlMode.DYNAMIC if "Dynamic" in pics.control_modes else ControlMode.SCHEDULED
        )
        auth = wishes.get("auth") or (
            AuthorizationType.EIM if "EIM" in pics.auth else AuthorizationType.PNC
        )
        extra = dict(f.evcc_config) if f is not None else {}
        lenient = extra.pop("lenient", False) or pics.negative_discharge
        negative = extra.pop("negative_discharge", pics.negative_discharge)
        resume = None
        if self._last is not None and not (f is not None and f.no_resume):
            for ev in self._last.events:
                if type(ev).__name__ == "SessionPaused":
                    resume = bytes.fromhex(ev.session_id)
        return EvccConfig(
            service=service,
            control_mode=control,
            auth=auth,
            profile=Profile.LENIENT if lenient else Profile.STRICT,
            negative_discharge=negative,
            duration_s=wishes.get("duration_s", 2.0),
            stop=wishes.get("stop", "terminate"),
            standby=wishes.get("standby"),
            resume_session_id=resume,
            truck=load_truck("mcs_7pack"),
            pki=self.pkis.good if self.pkis is not None else None,
            timings=_timings(f),
            faults=f.evcc if f is not None and f.evcc is not None else EvccFaults(),
            **extra,
        )

    def open(self, **wishes: Any) -> Channel:
        from mcscomm.session.connection import EvccConnection

        f = self.fault
        config = self._config(wishes)
        codec = LaxCodec() if f is not None and f.lax_codec else None
        max_payload = (
            f.max_payload if f is not None and f.max_payload else self.pics.pixit.max_payload
        )
        conn = EvccConnection(
            config, now=self.clock.now, tls=True, codec=codec, max_payload=max_payload
        )
        conn.start(self.clock.now)
        ch = InProcessChannel(
            conn,
            self.clock,
            to_sut=f.to_sut() if f is not None and f.to_sut is not None else None,
            from_sut=f.from_sut() if f is not None and f.from_sut is not None else None,
            deaf=f is not None and f.deaf,
        )
        self._last = ch
        return ch

    def sdp_request(self, timeout: float = 2.0) -> tuple[bytes, Any] | None:
        """Start the EVCC's SDP client towards a tester UDP socket; the datagram it sent and a
        function to answer it, or None when it sent nothing."""
        f = self.fault
        security = sdp.Security.NONE if f is not None and f.sdp == "no_tls" else sdp.Security.TLS
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(timeout)
        port = sock.getsockname()[1]

        def client() -> None:
            c = sdp.SdpClient(security, targets=[("127.0.0.1", port)], max_requests=1, wait=0.5)
            with contextlib.suppress(Exception):
                asyncio.run(c.discover())

        t = threading.Thread(target=client, daemon=True)
        t.start()
        self._threads.append(t)
        try:
            data, addr = sock.recvfrom(2048)
        except OSError:
            sock.close()
            return None

        def answer(reply: bytes) -> None:
            sock.sendto(reply, addr)
            t.join(timeout=2.0)
            sock.close()

        return data, answer

    def raw_connection(self) -> socket.socket:
        """Start our EVCC against a tester loopback listener; the accepted raw socket."""
        assert self.pkis is not None, "TLS cases need a PKI"
        f = self.fault
        manifest = self.pkis.good
        ctx = (
            broken_evcc_context(manifest, f.tls)
            if f is not None and f.tls
            else tls.evcc_context(manifest)
        )
        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(5.0)
        config = self._config({})
        t = threading.Thread(
            target=_run_tls_evcc, args=(listener.getsockname()[:2], ctx, config), daemon=True
        )
        t.start()
        self._threads.append(t)
        try:
            raw, _ = listener.accept()
        finally:
            listener.close()
        return raw

    def close(self) -> None:
        for t in self._threads:
            t.join(timeout=5.0)


def _run_tls_evcc(address: tuple[str, int], ctx: ssl.SSLContext, config: Any) -> None:
    from mcscomm.session.connection import EvccConnection

    try:
        raw = socket.create_connection(address, timeout=3.0)
    except OSError:
        return
    try:
        s = ctx.wrap_socket(raw)
    except (ssl.SSLError, OSError):
        raw.close()
        return
    evcc = EvccConnection(config, now=0.0, tls=True)
    t0 = time.monotonic()
    evcc.start(0.0)
    try:
        s.sendall(evcc.data_to_send())
        while not evcc.closed and time.monotonic() - t0 < 3.0:
            data = s.recv(65536)
            if not data:
                break
            evcc.receive_data(data, time.monotonic() - t0)
            out = evcc.data_to_send()
            if out:
                s.sendall(out)
    except (ssl.SSLError, OSError):
        pass
    finally:
        with contextlib.suppress(OSError):
            s.close()


# -- real implementations -----------------------------------------------------------------
class RemoteSecc(Sut):
    """A real SECC at ``address`` (TLS 1.3 with the PIXIT PKI when the PICS says ``tls``)."""

    role = Role.SECC
    virtual = False

    def __init__(self, pics: Pics, pkis: PkiSet | None, address: str) -> None:
        self.pics = pics
        self.pkis = pkis
        self.host, self.port = _split(address)

    def raw_connection(self) -> socket.socket:
        return socket.create_connection(
            (self.host, self.port), timeout=self.pics.pixit.connect_timeout_s
        )

    def open(self, **wishes: Any) -> Channel:
        sock = self.raw_connection()
        if self.pics.tls:
            if self.pkis is None:
                raise RuntimeError("a TLS SUT needs pixit.pki_dir")
            sock = tls.evcc_context(self.pkis.good).wrap_socket(sock)
        return SocketChannel(sock)

    def sdp_exchange(self, datagram: bytes, timeout: float = 0.25) -> bytes | None:
        if not self.pics.pixit.sdp_address:
            raise RuntimeError("SDP cases need pixit.sdp_address")
        host, port = _split(self.pics.pixit.sdp_address)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.settimeout(timeout)
            s.sendto(datagram, (host, port))
            try:
                return s.recv(2048)
            except OSError:
                return None


class ListeningEvcc(Sut):
    """Waits for a real EVCC on ``address``; starts it per case with the PIXIT ``sut_command``
    (``{host}``/``{port}`` are substituted) when given."""

    role = Role.EVCC
    virtual = False

    def __init__(self, pics: Pics, pkis: PkiSet | None, address: str) -> None:
        self.pics = pics
        self.pkis = pkis
        host, port = _split(address)
        self.listener = socket.create_server((host, port))
        self.host, self.port = self.listener.getsockname()[:2]
        self.proc: subprocess.Popen[bytes] | None = None

    def _launch(self) -> None:
        cmd = self.pics.pixit.sut_command
        if not cmd:
            return
        self._stop()
        args = shlex.split(cmd.format(host=self.host, port=self.port))
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5.0)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None

    def raw_connection(self) -> socket.socket:
        self._launch()
        self.listener.settimeout(self.pics.pixit.connect_timeout_s)
        raw, _ = self.listener.accept()
        return raw

    def open(self, **wishes: Any) -> Channel:
        sock = self.raw_connection()
        if self.pics.tls:
            if self.pkis is None:
                raise RuntimeError("a TLS SUT needs pixit.pki_dir")
            sock = tls.secc_context(self.pkis.good).wrap_socket(sock, server_side=True)
        return SocketChannel(sock, on_close=self._stop)

    def sdp_request(self, timeout: float = 10.0) -> tuple[bytes, Any] | None:
        if not self.pics.pixit.sdp_address:
            raise RuntimeError("SDP cases need pixit.sdp_address")
        host, port = _split(self.pics.pixit.sdp_address)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.bind((host, port))
        sock.settimeout(timeout)
        self._launch()
        try:
            data, addr = sock.recvfrom(2048)
        except OSError:
            sock.close()
            return None

        def answer(reply: bytes) -> None:
            sock.sendto(reply, addr)
            sock.close()

        return data, answer

    def close(self) -> None:
        self._stop()
        self.listener.close()


def frame(payload_type: int, payload: bytes) -> bytes:
    return build_frame(payload_type, payload)


def launcher(
    role: Role,
    pics: Pics,
    pkis: PkiSet | None,
    *,
    connect: str | None = None,
    listen: str | None = None,
    fault: str | None = None,
) -> Sut:
    """The launcher for a run: in-process unless ``connect`` (SECC) / ``listen`` (EVCC)."""
    if role is Role.SECC:
        if connect:
            return RemoteSecc(pics, pkis, connect)
        return InProcessSecc(pics, pkis, fault)
    if listen:
        return ListeningEvcc(pics, pkis, listen)
    return InProcessEvcc(pics, pkis, fault)


def prepare_pkis(pics: Pics, pki_dir: str | None = None, *, create: bool = True) -> PkiSet | None:
    """The PKIs of a run: ``pki_dir`` (or PIXIT ``pki_dir``) loaded, else the default PKI of the
    PICS algorithm created on first use (when ``create``). The "other" and "expired" PKIs of the
    TLS cases live next to it."""
    from pathlib import Path

    from mcscomm.security import pki

    directory = pki_dir or pics.pixit.pki_dir
    if directory:
        manifest = pki.load_manifest(directory)
    elif create:
        algorithm: pki.Algorithm = "ed448" if pics.tls_algorithm == "ed448" else "secp521r1"
        manifest = pki.ensure_pki(None, algorithm)
    else:
        return None
    base = Path(manifest.directory).parent / f".{Path(manifest.directory).name}-conformance"
    return PkiSet(manifest, base)

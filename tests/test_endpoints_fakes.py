"""Small fake sans-IO connections (the SeccConnection/EvccConnection contract) and TLS helpers.

The endpoint tests use them so that the asyncio adapters are tested on their own: the fakes speak
real V2GTP frames and emit the real session event classes, but their "protocol" is a trivial
request/response loop at the charge-loop cadence. The tests at the bottom check the fakes.
"""

from __future__ import annotations

import datetime
import ssl
import tempfile
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mcscomm.session import events as ev
from mcscomm.v2gtp import FrameDecoder, PayloadType, V2gtpError, build_frame

DC = int(PayloadType.DC)


def _doc(name: str, **values: float) -> bytes:
    body = "".join(
        f"<{k}><Exponent>0</Exponent><Value>{int(v)}</Value></{k}>" for k, v in values.items()
    )
    return f'<{name} xmlns="urn:fake">{body}</{name}>'.encode()


def _root(document: bytes) -> str:
    return document.split(b" ", 1)[0].lstrip(b"<").decode()


@dataclass
class FakeSettings:
    cycles: int = 8
    cycle_s: float = 0.25
    response_timeout_s: float = 0.5
    sequence_timeout_s: float = 0.5


class _Base:
    side = "?"

    def __init__(self, settings: FakeSettings | None = None) -> None:
        self.settings = settings or FakeSettings()
        self._decoder = FrameDecoder()
        self._out = bytearray()
        self._events: deque[ev.SessionEvent] = deque()
        self._timer: float | None = None
        self.closed = False
        self.close_reason: str | None = None
        self.lost_at: float | None = None

    # contract
    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def next_event(self) -> ev.SessionEvent | None:
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        return None if self.closed else self._timer

    def receive_data(self, data: bytes, now: float) -> None:
        try:
            frames = self._decoder.feed(data)
        except V2gtpError as exc:
            self._end(now, "failed", f"bad V2GTP stream: {exc}")
            return
        for frame in frames:
            if self.closed:
                return
            incoming = "secc->evcc" if self.side == "evcc" else "evcc->secc"
            name = _root(frame.payload)
            self._events.append(
                ev.MessageReceived(now, incoming, frame.payload_type, name, frame.payload)
            )
            self.on_message(name, frame.payload, now)

    def connection_lost(self, now: float) -> None:
        self.lost_at = now
        self._events.append(ev.SafeStateReached(now, "communication loss"))
        self._end(now, "failed", "communication loss")

    # helpers
    def _send(self, name: str, now: float, **values: float) -> None:
        document = _doc(name, **values)
        outgoing = "evcc->secc" if self.side == "evcc" else "secc->evcc"
        self._events.append(ev.MessageSent(now, outgoing, DC, name, document))
        self._out += build_frame(DC, document)

    def _end(self, now: float, result: str, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        self.close_reason = None if result != "failed" else reason
        self._events.append(ev.SessionEnded(now, result, reason))

    def on_message(self, name: str, document: bytes, now: float) -> None:
        raise NotImplementedError


class FakeEvcc(_Base):
    """Sends ``cycles`` DC_ChargeLoopReq at the cadence, then SessionStopReq."""

    side = "evcc"

    def __init__(self, settings: FakeSettings | None = None) -> None:
        super().__init__(settings)
        self.sent = 0
        self.awaiting: str | None = None
        self.next_send_at: float | None = None
        self.round_trips: list[float] = []
        self._sent_at = 0.0

    def start(self, now: float) -> None:
        self._request("DC_ChargeLoopReq", now)

    def _request(self, name: str, now: float) -> None:
        self.sent += 1
        self.awaiting = name
        self._sent_at = now
        self.next_send_at = None
        self._send(name, now, EVPresentVoltage=800, PresentSOC=40 + self.sent % 50)
        self._timer = now + self.settings.response_timeout_s

    def on_message(self, name: str, document: bytes, now: float) -> None:
        if self.awaiting is None or name != self.awaiting.replace("Req", "Res"):
            self._end(now, "failed", f"unexpected {name}")
            return
        self.round_trips.append(now - self._sent_at)
        if self.awaiting == "SessionStopReq":
            self.awaiting = None
            self._end(now, "success", "terminated")
            return
        self.awaiting = None
        self.next_send_at = now + self.settings.cycle_s
        self._timer = self.next_send_at

    def handle_timer(self, now: float) -> None:
        if self.closed or self._timer is None or now < self._timer:
            return
        if self.awaiting is not None:
            self._events.append(ev.TimeoutOccurred(now, "V2G_EVCC_Msg_Timeout", "WAIT"))
            self._end(now, "failed", f"no response to {self.awaiting}")
            return
        if self.sent >= self.settings.cycles:
            self._request("SessionStopReq", now)
        else:
            self._request("DC_ChargeLoopReq", now)


class FakeSecc(_Base):
    """Answers every request at once; a PowerSample per charge-loop request; 0.5 s sequence timer.

    A request named ``CrashReq`` raises (isolation tests).
    """

    side = "secc"

    def __init__(self, settings: FakeSettings | None = None) -> None:
        super().__init__(settings)
        self.requests = 0
        self._timer = None

    def on_message(self, name: str, document: bytes, now: float) -> None:
        if name == "CrashReq":
            raise RuntimeError("injected crash")
        self.requests += 1
        if name == "DC_ChargeLoopReq":
            power = 400_000.0 if self.requests % 20 < 14 else -200_000.0
            self._events.append(
                ev.PowerSample(now, 800.0, power / 800.0, power, 40.0 + self.requests % 50, "ev")
            )
            self._send("DC_ChargeLoopRes", now, EVSEPresentVoltage=800, EVSEPresentCurrent=500)
            self._timer = now + self.settings.sequence_timeout_s
        elif name == "SessionStopReq":
            self._send("SessionStopRes", now)
            self._end(now, "success", "terminated")
        else:
            self._end(now, "failed", f"unexpected {name}")

    def handle_timer(self, now: float) -> None:
        if self.closed or self._timer is None or now < self._timer:
            return
        self._events.append(ev.TimeoutOccurred(now, "V2G_SECC_Sequence_Timeout", "CHARGE_LOOP"))
        self._end(now, "failed", "sequence timeout")


# ----------------------------------------------------------------------------------- TLS helper


@dataclass(frozen=True)
class Tls:
    server: ssl.SSLContext
    client: ssl.SSLContext
    directory: Path


def make_tls() -> Tls:
    """A throwaway self-signed P-256 certificate and TLS 1.3 contexts for both ends (loopback)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mcscomm test SECC")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory = Path(tempfile.mkdtemp(prefix="mcscomm-tls-"))
    (directory / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.minimum_version = ssl.TLSVersion.TLSv1_3
    server.load_cert_chain(directory / "cert.pem", directory / "key.pem")
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.minimum_version = ssl.TLSVersion.TLSv1_3
    client.check_hostname = False
    client.load_verify_locations(directory / "cert.pem")
    return Tls(server, client, directory)


# --------------------------------------------------------------------------- tests of the fakes


def test_fake_pair_round_trip_in_memory() -> None:
    evcc, secc = FakeEvcc(FakeSettings(cycles=3)), FakeSecc()
    now = 0.0
    evcc.start(now)
    for _ in range(100):
        secc.receive_data(evcc.data_to_send(), now)
        evcc.receive_data(secc.data_to_send(), now)
        if evcc.closed:
            break
        now = evcc.get_timer() or now
        evcc.handle_timer(now)
    assert evcc.closed and evcc.close_reason is None and secc.closed
    assert secc.requests == 4  # 3 charge-loop requests + SessionStop
    assert now == 0.75  # a 0.25 s cadence wait after each charge-loop response


def test_fake_secc_times_out_without_requests() -> None:
    secc = FakeSecc()
    secc.receive_data(build_frame(DC, _doc("DC_ChargeLoopReq")), 1.0)
    assert secc.get_timer() == 1.5
    secc.handle_timer(1.5)
    assert secc.closed and secc.close_reason == "sequence timeout"

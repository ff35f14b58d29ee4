"""Bytes in, bytes out: V2GTP framing + codec around the session state machines (aioquic style).

``SeccConnection`` / ``EvccConnection`` are the contract the asyncio endpoints drive:
``receive_data(data, now)``, ``data_to_send()``, ``next_event()``, ``get_timer()``,
``handle_timer(now)``, ``closed``, ``close_reason`` (and ``start(now)`` on the EVCC). Nothing
raises out of them on bad input: a broken V2GTP header -- or a payload type that is not one of
the -20 TCP streams (SDP, manufacturer, reserved; see ``streams.py``) -- closes the connection
with the reason (a byte stream cannot be resynchronised, facts §1.3), after the complete frames
that came before it in the same read have been handled; an undecodable request is answered
FAILED when its type can be told from the document (FAILED_SequenceError when it came on a
stream that does not carry it), else the connection closes.
"""

from __future__ import annotations

import weakref
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mcscomm.codec import Codec, CodecError, XmlCodec
from mcscomm.codec.base import MESSAGE_CLASSES
from mcscomm.codec.errors import MalformedDocument
from mcscomm.security.pki import Manifest
from mcscomm.session import errors
from mcscomm.session.config import EvccConfig, SeccConfig
from mcscomm.session.evcc import EvccSession
from mcscomm.session.events import (
    EVCC_TO_SECC,
    SECC_TO_EVCC,
    MessageReceived,
    MessageSent,
    ProtocolError,
    SessionEvent,
)
from mcscomm.session.secc import InjectedCrash, SeccSession
from mcscomm.session.secc_handlers import HANDLERS
from mcscomm.session.security_adapter import ManifestSignatures
from mcscomm.session.signing import SignaturePort
from mcscomm.session.streams import carries_name, is_stream_payload_type
from mcscomm.v2gtp import DEFAULT_MAX_PAYLOAD, Frame, FrameDecoder, V2gtpError, build_frame

_shared_codec: XmlCodec | None = None
_signatures: dict[tuple[int, int], tuple[weakref.ref[Manifest], ManifestSignatures]] = {}


def default_codec() -> XmlCodec:
    """One XmlCodec per process (schemas compile once; the event loop is single-threaded)."""
    global _shared_codec
    if _shared_codec is None:
        _shared_codec = XmlCodec()
    return _shared_codec


def signatures_for(pki: object, codec: Codec) -> SignaturePort | None:
    """A cached :class:`ManifestSignatures` for a manifest (None without a PKI): keys are loaded
    once, not per connection. Entries are checked against a weak reference, so a new manifest
    that happens to reuse an old one's ``id`` never gets the old keys."""
    if not isinstance(pki, Manifest):
        return None
    key = (id(pki), id(codec))
    hit = _signatures.get(key)
    if hit is not None and hit[0]() is pki:
        return hit[1]
    adapter = ManifestSignatures(pki, codec)
    _signatures[key] = (weakref.ref(pki), adapter)
    return adapter


def _root_name(codec: Codec, data: bytes) -> str | None:
    """The message class name of the document's root element (namespace included, so
    ``supportedAppProtocolReq`` is ``SupportedAppProtocolReq``) when the codec can still parse
    it; None for an unparsable document or a root that is no message of ours."""
    parse = getattr(codec, "parse", None)
    if parse is None:
        return None
    try:
        tag = parse(data).tag
    except (CodecError, ValueError):
        return None
    cls = MESSAGE_CLASSES.get(tag) if isinstance(tag, str) else None
    return None if cls is None else cls.__name__


class _Base:
    _direction_in: str
    _direction_out: str

    def __init__(self, codec: Codec | None, max_payload: int) -> None:
        self.codec: Codec = codec if codec is not None else default_codec()
        self._decoder = FrameDecoder(max_payload, accept=is_stream_payload_type)
        self._tx = bytearray()
        self._events: deque[SessionEvent] = deque()
        self._transport_error: str | None = None

    def data_to_send(self) -> bytes:
        """Bytes to write to the transport now (empty when nothing is pending)."""
        out = bytes(self._tx)
        self._tx.clear()
        return out

    def next_event(self) -> SessionEvent | None:
        return self._events.popleft() if self._events else None

    def _frames(self, data: bytes) -> tuple[list[Frame], V2gtpError | None]:
        """The frames ``data`` completes, and the framing error that ended the read (if any).

        The frames before a broken header are valid and are handled first (they deserve their
        answers); the caller then closes with :meth:`_framing_failed`."""
        failed = self._decoder.error
        if failed is not None:  # a failed decoder re-raises its old error, with its old frames
            return [], failed
        try:
            return self._decoder.feed(data), None
        except V2gtpError as exc:
            return exc.frames, exc

    def _framing_failed(self, exc: V2gtpError, now: float) -> None:
        reason = exc.close_reason
        self._events.append(ProtocolError(t=now, kind="v2gtp", detail=reason))
        self._transport_error = reason
        self._on_transport_error(reason, now)

    def _on_transport_error(self, reason: str, now: float) -> None:
        raise NotImplementedError

    @contextmanager
    def _guard(self, now: float) -> Iterator[None]:
        """Last line of defence: a defect below becomes ProtocolError + close, never a raise
        (except the deliberately planted ``InjectedCrash`` of the fault hooks)."""
        try:
            yield
        except InjectedCrash:
            raise
        except Exception as exc:
            detail = f"internal error: {type(exc).__name__}: {exc}"
            self._events.append(ProtocolError(t=now, kind="internal_error", detail=detail))
            self._on_transport_error(detail, now)

    def _emit_out(self, payload_type: int, message: Any, now: float) -> bool:
        try:
            doc = self.codec.encode(message)
        except Exception as exc:  # our own message does not encode: a defect, reported
            detail = f"cannot encode {type(message).__name__}: {exc}"
            self._events.append(ProtocolError(t=now, kind="encode", detail=detail))
            self._on_transport_error(detail, now)
            return False
        self._tx += build_frame(payload_type, doc)
        self._events.append(
            MessageSent(
                t=now,
                direction=self._direction_out,
                payload_type=payload_type,
                message=type(message).__name__,
                document=doc,
            )
        )
        return True


class SeccConnection(_Base):
    """The SECC end of one TCP/TLS connection."""

    _direction_in = EVCC_TO_SECC
    _direction_out = SECC_TO_EVCC

    def __init__(
        self,
        config: SeccConfig,
        *,
        now: float = 0.0,
        tls: bool = True,
        codec: Codec | None = None,
        signatures: SignaturePort | None = None,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        peer_cert_der: bytes | None = None,
    ) -> None:
        """``peer_cert_der``: the TLS client certificate (DER) when the endpoint has one; a
        paused session is then only resumed from a connection with the same certificate."""
        super().__init__(codec, max_payload)
        if signatures is None:
            signatures = signatures_for(config.pki, self.codec)
        self.session = SeccSession(
            config, now=now, tls=tls, signatures=signatures, peer_cert_der=peer_cert_der
        )
        self._pump(now)

    @property
    def closed(self) -> bool:
        return self.session.closed

    @property
    def close_reason(self) -> str | None:
        return self.session.close_reason

    def receive_data(self, data: bytes, now: float) -> None:
        """Feed bytes from the transport."""
        if self.session.ended:
            return
        with self._guard(now):
            frames, error = self._frames(data)
            for frame in frames:
                if self.session.ended:
                    break
                self._receive_frame(frame.payload_type, frame.payload, now)
            if error is not None and not self.session.ended:
                self._pump(now)  # answers (and events) of the good frames come first in the log
                self._framing_failed(error, now)
        self._pump(now)

    def _receive_frame(self, payload_type: int, payload: bytes, now: float) -> None:
        try:
            message = self.codec.decode(payload_type, payload)
        except CodecError as exc:
            name = None if isinstance(exc, MalformedDocument) else _root_name(self.codec, payload)
            known = name if name in HANDLERS else None
            error: errors.SessionError
            if known is not None and not carries_name(payload_type, known):
                error = errors.WrongPayloadType(f"{known} on payload type 0x{payload_type:04X}")
            else:
                error = errors.MalformedMessage(f"{type(exc).__name__}: {exc}")
            self.session.fail(known, payload_type, error, now)
            return
        self._events.append(
            MessageReceived(
                t=now,
                direction=self._direction_in,
                payload_type=payload_type,
                message=type(message).__name__,
                document=payload,
            )
        )
        self.session.receive(message, payload_type, now)

    def get_timer(self) -> float | None:
        return self.session.get_timer()

    def handle_timer(self, now: float) -> None:
        with self._guard(now):
            self.session.handle_timer(now)
        self._pump(now)

    def set_backend(self, setpoint_w: float, now: float, **caps: float) -> None:
        """Backend setpoint (W; > 0 charge, < 0 discharge) and caps, in force from ``now``."""
        self.session.set_backend(setpoint_w, now, **caps)
        self._pump(now)

    def notify(self, notification: Any) -> None:
        """Queue an EVSENotification (Pause, Terminate, ScheduleRenegotiation, ...)."""
        self.session.notify(notification)

    def connection_lost(self, now: float, reason: str = "connection lost") -> None:
        """The transport is gone: safe state, SessionEnded."""
        self.session.abort(reason, now)
        self._pump(now)

    def _on_transport_error(self, reason: str, now: float) -> None:
        self.session.abort(reason, now)

    def _pump(self, now: float) -> None:
        for out in self.session.outgoing(now):
            self._emit_out(out.payload_type, out.message, now)
        while (event := self.session.next_event()) is not None:
            self._events.append(event)


class EvccConnection(_Base):
    """The EVCC end of one TCP/TLS connection."""

    _direction_in = SECC_TO_EVCC
    _direction_out = EVCC_TO_SECC

    def __init__(
        self,
        config: EvccConfig,
        *,
        now: float = 0.0,
        tls: bool = True,
        codec: Codec | None = None,
        signatures: SignaturePort | None = None,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
    ) -> None:
        super().__init__(codec, max_payload)
        if signatures is None:
            signatures = signatures_for(config.pki, self.codec)
        self.session = EvccSession(config, now=now, tls=tls, signatures=signatures)

    @property
    def closed(self) -> bool:
        return self.session.closed

    @property
    def close_reason(self) -> str | None:
        return self.session.close_reason

    @property
    def result(self) -> str | None:
        """``success``, ``paused`` or ``failed`` once the session ended."""
        return self.session.result

    def start(self, now: float) -> None:
        """Send the SupportedAppProtocolReq."""
        self.session.start(now)
        self._pump(now)

    def receive_data(self, data: bytes, now: float) -> None:
        if self.session.ended:
            return
        with self._guard(now):
            self._receive(data, now)
        self._pump(now)

    def _receive(self, data: bytes, now: float) -> None:
        frames, error = self._frames(data)
        for frame in frames:
            if self.session.ended:
                break
            try:
                message = self.codec.decode(frame.payload_type, frame.payload)
            except CodecError as exc:
                self.session.fail(f"undecodable response: {type(exc).__name__}: {exc}", now)
                break
            self._events.append(
                MessageReceived(
                    t=now,
                    direction=self._direction_in,
                    payload_type=frame.payload_type,
                    message=type(message).__name__,
                    document=frame.payload,
                )
            )
            self.session.receive(message, frame.payload_type, now)
        if error is not None and not self.session.ended:
            self._pump(now)  # whatever the good frames made us send goes out first
            self._framing_failed(error, now)

    def get_timer(self) -> float | None:
        return self.session.get_timer()

    def handle_timer(self, now: float) -> None:
        with self._guard(now):
            self.session.handle_timer(now)
        self._pump(now)

    def stop(self, kind: Any = None) -> None:
        """Ask the truck to leave the charge loop and stop (Terminate unless ``kind``)."""
        if kind is None:
            self.session.stop()
        else:
            self.session.stop(kind)

    def connection_lost(self, now: float, reason: str = "connection lost") -> None:
        self.session.fail(reason, now)
        self._pump(now)

    def _on_transport_error(self, reason: str, now: float) -> None:
        self.session.fail(reason, now)

    def _pump(self, now: float) -> None:
        for out in self.session.outgoing():
            self._emit_out(out.payload_type, out.message, now)
        while (event := self.session.next_event()) is not None:
            self._events.append(event)

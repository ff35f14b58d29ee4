"""A codec that takes the session's encoding (EXI or XML) from the peer's first message.

ISO 15118-20 puts EXI on the wire; a real SECC speaks nothing else. mcscomm's own XML tooling
(conformance scripts, the fuzzer, hand-written documents) talks XML, and an SECC started with
``--encoding auto`` (the ``mcscomm secc`` default) serves both: the first document the peer
sends fixes the encoding of the whole session, every later decode, encode and canonicalize uses
that codec, and a document in the other encoding is a :class:`MalformedDocument`.

Detection (one look at the first bytes): an EXI body of the V2G profile starts with the bare EXI
header byte ``0x80`` (shared/exi-vectors/README §5: no cookie, no options); an XML document
starts with ``<``, possibly after a UTF-8 BOM and whitespace. Anything else is malformed in
either encoding.

One :class:`AutoCodec` per connection (it has state); the underlying codecs are shared. This
module imports :mod:`mcscomm.exi` lazily, and ``mcscomm.codec`` never imports this module, so
the package has no import cycle (``mcscomm.exi`` builds on ``mcscomm.codec``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from mcscomm.codec.base import Codec, Message
from mcscomm.codec.errors import MalformedDocument

if TYPE_CHECKING:
    from mcscomm.codec.xml import XmlCodec
    from mcscomm.exi.codec import ExiCodec

Encoding = Literal["exi", "xml"]
#: What the command-line ``--encoding`` option accepts.
ENCODINGS = ("exi", "xml", "auto")

#: The V2G EXI profile's header: distinguishing bits ``10``, no cookie, no options, version 1.
EXI_HEADER = 0x80
_UTF8_BOM = b"\xef\xbb\xbf"
_XML_SPACE = b" \t\r\n"

_shared: dict[str, Codec] = {}


def sniff(data: bytes) -> Encoding | None:
    """``exi`` or ``xml`` for a document's first bytes, None when it is neither."""
    if data[:1] == bytes((EXI_HEADER,)):
        return "exi"
    body = data[3:] if data.startswith(_UTF8_BOM) else data
    if body.lstrip(_XML_SPACE)[:1] == b"<":
        return "xml"
    return None


def shared_codec(encoding: Encoding) -> Codec:
    """The process-wide codec of ``encoding`` (XML: the sessions' default XmlCodec)."""
    codec = _shared.get(encoding)
    if codec is None:
        if encoding == "xml":
            from mcscomm.session.connection import default_codec

            codec = default_codec()
        elif encoding == "exi":
            codec = _make_wire_exi_codec(shared_codec("xml"))
        else:
            raise ValueError(f"unknown encoding {encoding!r} (exi or xml)")
        _shared[encoding] = codec
    return codec


def _make_wire_exi_codec(xml: Codec) -> Codec:
    """The process's EXI codec: an ExiCodec that also remembers the element trees of the last
    documents it encoded or decoded, so a trace renders them without decoding them again."""
    from lxml import etree

    from mcscomm.exi import ExiCodec

    class WireExiCodec(ExiCodec):
        """ExiCodec + :meth:`render` (see :func:`render_exi`)."""

        _RECENT = 16  # documents in flight between a codec call and the recorder: a handful

        def __init__(self) -> None:
            super().__init__(xml=xml)
            self._recent: dict[tuple[int, bytes], etree._Element] = {}

        def _remember(self, payload_type: int, data: bytes, root: etree._Element) -> None:
            recent = self._recent
            if len(recent) >= self._RECENT:
                del recent[next(iter(recent))]  # the oldest (dicts keep insertion order)
            recent[(payload_type, data)] = root

        def encode_element(self, root: etree._Element, payload_type: int) -> bytes:
            data = super().encode_element(root, payload_type)
            self._remember(payload_type, data, root)
            return data

        def decode_element(self, payload_type: int, data: bytes) -> etree._Element:
            root = super().decode_element(payload_type, data)
            self._remember(payload_type, bytes(data), root)
            return root

        def render(self, payload_type: int, data: bytes) -> str:
            """The XML text of an EXI document (from the recent trees when it just passed
            through this codec); raises ExiError when it does not decode."""
            root = self._recent.get((payload_type, data))
            if root is None:
                return self.to_xml(payload_type, data)
            return etree.tostring(root, encoding="unicode")

    return WireExiCodec()


def render_exi(payload_type: int, data: bytes) -> str:
    """The XML text of an EXI document, for traces; raises a CodecError (ExiError) when it does
    not decode. Documents the shared EXI codec just encoded or decoded are not decoded again."""
    return str(shared_codec("exi").render(payload_type, data))  # type: ignore[attr-defined]


def codec_for(encoding: str, fallback: Encoding = "exi") -> Codec:
    """The codec of a ``--encoding`` choice: a shared one for ``exi``/``xml``, a fresh
    :class:`AutoCodec` (one per connection) for ``auto``."""
    if encoding == "auto":
        return AutoCodec(fallback=fallback)
    if encoding in ("exi", "xml"):
        return shared_codec(encoding)  # type: ignore[arg-type]
    raise ValueError(f"unknown encoding {encoding!r} (choose from {', '.join(ENCODINGS)})")


class AutoCodec:
    """EXI or XML, fixed by the first document decoded; see the module docstring.

    Before the first decode, ``encode``, ``canonicalize`` and ``canonicalization_uri`` use the
    ``fallback`` encoding (EXI by default; an SECC only answers, so in practice the peer always
    speaks first). ``exi`` / ``xml`` override the shared codecs (tests).
    """

    def __init__(
        self,
        fallback: Encoding = "exi",
        *,
        exi: ExiCodec | Codec | None = None,
        xml: XmlCodec | Codec | None = None,
    ) -> None:
        if fallback not in ("exi", "xml"):
            raise ValueError(f"fallback must be 'exi' or 'xml', not {fallback!r}")
        self.fallback: Encoding = fallback
        self._codecs: dict[Encoding, Codec | None] = {"exi": exi, "xml": xml}
        #: The encoding the peer chose with its first document; None until then.
        self.detected: Encoding | None = None
        #: xmldsig algorithm of the encoding in use (follows the detection).
        self.canonicalization_uri: str = self.active.canonicalization_uri

    @property
    def encoding(self) -> Encoding:
        """The encoding in use: the detected one, else the fallback."""
        return self.detected or self.fallback

    @property
    def active(self) -> Codec:
        """The codec in use now."""
        return self._codec(self.encoding)

    def _codec(self, encoding: Encoding) -> Codec:
        codec = self._codecs[encoding]
        if codec is None:
            codec = self._codecs[encoding] = shared_codec(encoding)
        return codec

    # -- Codec protocol ----------------------------------------------------------------------
    def decode(self, payload_type: int, data: bytes) -> Message:
        """Decode with the session's codec; the first document fixes it."""
        kind = sniff(bytes(data[:64]))
        if kind is None:
            raise MalformedDocument("neither an EXI body (0x80 header) nor an XML document")
        if self.detected is None:
            self.detected = kind
            self.canonicalization_uri = self.active.canonicalization_uri
        elif kind != self.detected:
            raise MalformedDocument(
                f"{kind.upper()} document in a session that speaks {self.detected.upper()}"
            )
        return self._codec(kind).decode(payload_type, data)

    def encode(self, message: Message) -> bytes:
        return self.active.encode(message)

    def payload_type_for(self, message: Message) -> int:
        return self.active.payload_type_for(message)

    def canonicalize(self, fragment: object) -> bytes:
        return self.active.canonicalize(fragment)

    # -- extras the session and traces look for ----------------------------------------------
    def parse(self, data: bytes) -> Any:
        """The XML codec's ``parse`` (the session names the root of an invalid XML document);
        EXI documents have no cheap root lookup, so they raise MalformedDocument."""
        if sniff(bytes(data[:64])) != "xml" or self.detected == "exi":
            raise MalformedDocument("not an XML document")
        parse = getattr(self._codec("xml"), "parse", None)
        if parse is None:
            raise MalformedDocument("the XML codec cannot parse")
        return parse(data)

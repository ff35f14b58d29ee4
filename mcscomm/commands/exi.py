"""``mcscomm exi``: encode and decode ISO 15118-20 EXI, and show the grammars.

Examples::

    echo 8098... | mcscomm exi decode --payload-type 0x8004      # EXI hex -> XML
    mcscomm exi encode --payload-type 0x8002 < SessionSetupReq.xml   # XML -> EXI hex
    mcscomm exi grammar DC_ChargeLoopReq                           # the element's grammar

Several inputs may come one per line (a hex string, or a single-line XML document, per line);
the outputs then come one per line in the same order, and an input that fails gives a line
starting with ``ERROR:`` while the others go on. The exit status is 1 if any input failed.
"""

from __future__ import annotations

import argparse
import os
import sys

from lxml import etree

from mcscomm.codec.errors import CodecError

HELP = "encode and decode ISO 15118-20 EXI (hex on stdin/stdout) and show EXI grammars"

_PAYLOAD_NAMES = {
    "sap": 0x8001,
    "app": 0x8001,
    "common": 0x8002,
    "ac": 0x8003,
    "dc": 0x8004,
    "metering": 0x8102,
}
_GRAMMAR_ORDER = ("DC", "CommonMessages", "AppProtocol", "xmldsig")


def _payload_type(text: str) -> int:
    value = _PAYLOAD_NAMES.get(text.lower())
    if value is not None:
        return value
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a payload type: {text!r}") from None
    if value not in (0x8001, 0x8002, 0x8003, 0x8004, 0x8102):
        raise argparse.ArgumentTypeError(
            f"{text}: EXI payload types are 0x8001, 0x8002, 0x8004, 0x8102 (and 0x8003 with "
            "an AC schema)"
        )
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    dec = sub.add_parser("decode", help="EXI hex (stdin, one per line) -> XML document")
    enc = sub.add_parser("encode", help="XML document (stdin, or one per line) -> EXI hex")
    for p in (dec, enc):
        p.add_argument(
            "--payload-type",
            "-t",
            type=_payload_type,
            default=None,
            help="V2GTP payload type selecting the grammar: 0x8001 AppProtocol, 0x8002 "
            "CommonMessages, 0x8004 DC, 0x8102 MeteringConfirmation (also: sap, common, dc, "
            "metering). Decode: may be omitted when the hex is a whole V2GTP frame.",
        )
        p.add_argument(
            "--fragment",
            metavar="GRAMMAR",
            choices=("CommonMessages", "DC", "xmldsig", "AppProtocol", "AC"),
            help="work on EXI fragments (signature canonical form) of this grammar instead",
        )
        p.add_argument(
            "--validate", action="store_true", help="also validate documents against the XSD"
        )
    dec.add_argument("--pretty", action="store_true", help="indent the XML (single input)")
    dec.add_argument(
        "--value-hits",
        action="store_true",
        help="accept string-table hits (peers using the EXI default value partitions instead "
        "of the V2G profile)",
    )
    gram = sub.add_parser("grammar", help="print the EXI grammar of an element")
    gram.add_argument(
        "name",
        help="element name (local, or {namespace}local); 'document' or 'fragment' for the "
        "top-level grammars",
    )
    gram.add_argument(
        "--schema",
        choices=_GRAMMAR_ORDER,
        help="schema set to look in (default: the first that declares NAME)",
    )
    gram.add_argument(
        "--payload-type", "-t", type=_payload_type, default=None, help="pick the schema set"
    )


def run(args: argparse.Namespace) -> int:
    from mcscomm.exi.errors import ExiError

    try:
        if args.action == "grammar":
            return _grammar(args)
        if args.action == "encode" and args.fragment is None and args.payload_type is None:
            print("mcscomm exi encode: --payload-type is required", file=sys.stderr)
            return 2
        text = _read_stdin()
        if text is None:
            print(f"mcscomm exi {args.action}: stdin is not UTF-8 text", file=sys.stderr)
            return 2
        if args.action == "decode":
            return _batch(_decode_inputs(text), lambda item: _decode_one(args, item))
        return _batch(_encode_inputs(text), lambda item: _encode_one(args, item))
    except ExiError as exc:  # configuration problems (schemas) rather than one bad input
        print(f"mcscomm exi: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # e.g. `mcscomm exi grammar ... | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _read_stdin() -> str | None:
    """All of stdin as text, or None when it is not UTF-8 (hex and XML inputs both are)."""
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:  # a replaced text stream (tests): already decoded
        return sys.stdin.read()
    try:
        return bytes(stream.read()).decode("utf-8")
    except UnicodeDecodeError:
        return None


def _batch(items: list[str], convert: object) -> int:
    assert callable(convert)
    if not items:
        print("mcscomm exi: no input on stdin", file=sys.stderr)
        return 2
    failed = 0
    for item in items:
        try:
            print(convert(item), flush=False)
        except (CodecError, ValueError) as exc:
            failed += 1
            reason = " ".join(str(exc).split()) or type(exc).__name__
            print(f"ERROR: {type(exc).__name__}: {reason}")
    sys.stdout.flush()
    if failed:
        print(f"mcscomm exi: {failed} of {len(items)} inputs failed", file=sys.stderr)
        return 1
    return 0


def _decode_inputs(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _encode_inputs(text: str) -> list[str]:
    stripped = text.strip()
    if not stripped:
        return []
    lines = [line.strip() for line in stripped.splitlines() if line.strip()]
    if len(lines) > 1:
        try:
            etree.fromstring(stripped.encode())
            return [stripped]  # one (pretty-printed) document
        except etree.XMLSyntaxError:
            return lines
    return lines


def _parse_hex(item: str) -> bytes:
    cleaned = "".join(item.split())
    if cleaned[:2].lower() == "0x":
        cleaned = cleaned[2:]
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        raise ValueError("not a hex string") from None


def _decode_one(args: argparse.Namespace, item: str) -> str:
    from mcscomm.exi.codec import ExiCodec

    data = _parse_hex(item)
    payload_type = args.payload_type
    # A whole V2GTP frame (01 FE, type, length): take the payload type from its header.
    if (
        len(data) >= 8
        and data[:2] == b"\x01\xfe"
        and int.from_bytes(data[4:8], "big") == len(data) - 8
    ):
        frame_type = int.from_bytes(data[2:4], "big")
        payload_type = payload_type or frame_type
        data = data[8:]
    codec = ExiCodec(value_hits=args.value_hits)
    if args.fragment:
        elements = codec.decode_fragment(data, args.fragment)
        return "".join(_serialise(e, args) for e in elements)
    if payload_type is None:
        raise ValueError("--payload-type is required for a bare EXI body")
    root = codec.decode_element(payload_type, data)
    if args.validate:
        codec.validate_element(root)
    return _serialise(root, args)


def _serialise(root: etree._Element, args: argparse.Namespace) -> str:
    pretty = bool(getattr(args, "pretty", False))
    return etree.tostring(root, encoding="unicode", pretty_print=pretty).rstrip("\n")


def _encode_one(args: argparse.Namespace, item: str) -> str:
    from mcscomm.codec.xml import XmlCodec
    from mcscomm.exi.codec import ExiCodec

    root = XmlCodec().parse(item.encode("utf-8"))
    codec = ExiCodec()
    if args.fragment:
        return codec.encode_fragment([root], args.fragment).hex()
    if args.validate:
        codec.validate_element(root)
    return str(codec.encode_element(root, args.payload_type).hex())


def _grammar(args: argparse.Namespace) -> int:
    from mcscomm.exi.codec import PAYLOAD_GRAMMARS, grammars

    if args.schema:
        order: tuple[str, ...] = (args.schema,)
    elif args.payload_type is not None:
        order = (PAYLOAD_GRAMMARS[args.payload_type],)
    else:
        order = _GRAMMAR_ORDER
    for name in order:
        g = grammars(name)
        if args.name in ("document", "fragment"):
            state = g.document if args.name == "document" else g.fragment
            print(f"{args.name} grammar of {name} ({state.width} bits per event code)")
            for code, prod in enumerate(state.productions):
                label = "ED" if args.name == "fragment" and prod.kind == 3 else prod.label()
                print(f"  {code:>3}  {label}")
            return 0
        try:
            print(f"# schema set {name}")
            print(g.describe(args.name))
            return 0
        except KeyError:
            continue
    print(f"mcscomm exi grammar: no element {args.name!r} in {', '.join(order)}", file=sys.stderr)
    return 1

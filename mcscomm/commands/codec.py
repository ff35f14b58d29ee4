"""``mcscomm codec``: validate ISO 15118-20 / SAP XML documents and print example messages.

Examples::

    mcscomm codec validate message.xml                 # payload type picked from the root
    mcscomm codec validate --payload-type 0x8004 loop.xml
    mcscomm codec example DC_ChargeLoopReq > loop.xml
    mcscomm codec list                                  # message names
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mcscomm.codec import XmlCodec

HELP = "validate ISO 15118-20 XML messages and print valid example documents"


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``validate``, ``example`` and ``list`` actions."""
    parser.add_argument(
        "--schema-dir", type=Path, default=None, help="folder of XSD files (default: bundled)"
    )
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    validate = sub.add_parser("validate", help="decode and schema-validate an XML document")
    validate.add_argument("file", help="XML file ('-' for stdin)")
    validate.add_argument(
        "--payload-type",
        type=lambda s: int(s, 0),
        default=None,
        help="V2GTP payload type, e.g. 0x8002 (default: derived from the root element)",
    )
    example = sub.add_parser("example", help="print a valid example document of a message")
    example.add_argument("message", help="message name, e.g. DC_ChargeLoopReq")
    sub.add_parser("list", help="list the message names")


def _message_classes() -> dict[str, type]:
    from mcscomm.codec.base import MESSAGE_CLASSES
    from mcscomm.messages.meta import TYPE_TAGS

    return {TYPE_TAGS[cls][1]: cls for cls in MESSAGE_CLASSES.values()}


def run(args: argparse.Namespace) -> int:
    """Run one action; 0 on success, 1 on an invalid document, 2 on usage errors."""
    from mcscomm.codec import XmlCodec
    from mcscomm.codec.schemas import SchemaLoadError

    try:
        return _run(args, XmlCodec(args.schema_dir))
    except SchemaLoadError as exc:  # the schemas load lazily, on the first encode or decode
        print(f"mcscomm codec: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, codec: XmlCodec) -> int:
    from mcscomm.codec import CodecError

    if args.action == "list":
        for name in sorted(_message_classes(), key=str.lower):
            print(name)
        return 0
    if args.action == "example":
        from mcscomm.messages.examples import example

        classes = _message_classes()
        lookup = {name.lower(): cls for name, cls in classes.items()}
        cls = lookup.get(args.message.lower())
        if cls is None:
            print(f"mcscomm codec: unknown message {args.message!r} (see 'list')", file=sys.stderr)
            return 2
        sys.stdout.write(codec.encode(example(cls)).decode("utf-8") + "\n")
        return 0
    # validate
    try:
        data = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    except OSError as exc:
        print(f"mcscomm codec: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    data = data.strip()
    try:
        if args.payload_type is None:
            message = codec.decode_any(data)
        else:
            message = codec.decode(args.payload_type, data)
    except CodecError as exc:
        print(f"invalid: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    pt = codec.payload_type_for(message)
    print(f"valid: {type(message).__name__} (payload type {pt:#06x})")
    return 0

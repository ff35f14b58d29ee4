"""Document-level mutations: hostile and broken XML bytes rather than wrong values.

Entities (billion laughs, external entities), deep nesting, huge text, invalid encodings,
truncation, comments and processing instructions, byte flips. Each is ``(rng, doc) -> (new doc,
label)``; whether the result is still a valid message is decided afterwards by the codec.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

DocMutator = Callable[[random.Random, bytes], tuple[bytes, str]]

_TEXT = re.compile(rb">([^<>]+)</")


def _text_spans(doc: bytes) -> list[tuple[int, int]]:
    return [m.span(1) for m in _TEXT.finditer(doc)]


def _replace_text(rng: random.Random, doc: bytes, new: bytes) -> bytes:
    spans = _text_spans(doc)
    if not spans:
        return doc + new
    a, b = rng.choice(spans)
    return doc[:a] + new + doc[b:]


def _after_root_start(doc: bytes) -> int:
    return doc.find(b">") + 1


def entities(rng: random.Random, doc: bytes) -> tuple[bytes, str]:
    kind = rng.choice(("laughs", "external", "parameter", "undeclared"))
    if kind == "laughs":
        decl = b'<!ENTITY a0 "lol">' + b"".join(
            b'<!ENTITY a%d "%s">' % (i, b"".join(b"&a%d;" % (i - 1) for _ in range(10)))
            for i in range(1, 10)
        )
        ref = b"&a9;"
    elif kind == "external":
        decl = b'<!ENTITY x SYSTEM "file:///etc/passwd">'
        ref = b"&x;"
    elif kind == "parameter":
        decl = b'<!ENTITY % p SYSTEM "http://127.0.0.1:9/x.dtd"> %p;'
        ref = b"1"
    else:
        decl = b""
        ref = b"&undefined;"
    root = doc[1 : doc.find(b" ")] if doc.startswith(b"<") else b"r"
    dtd = b"<!DOCTYPE " + root + b" [" + decl + b"]>" if decl else b""
    return dtd + _replace_text(rng, doc, ref), f"entity {kind}"


def deep_nesting(rng: random.Random, doc: bytes) -> tuple[bytes, str]:
    depth = rng.choice((64, 256, 1000, 5000, 9000))
    at = _after_root_start(doc)
    nest = b"<a>" * depth + b"</a>" * depth
    return doc[:at] + nest + doc[at:], f"nesting depth {depth}"


def huge_text(rng: random.Random, doc: bytes) -> tuple[bytes, str]:
    size = rng.choice((1024, 8192, 60000, 70000))
    return _replace_text(rng, doc, b"9" * size), f"text of {size} bytes"


_BAD_BYTES = (
    (b"\xff\xfe", "invalid utf-8"),
    (b"\xc0\xaf", "overlong utf-8"),
    (b"\xed\xa0\x80", "utf-8 surrogate"),
    (b"\x00", "NUL"),
    (b"\x01\x1b", "control characters"),
    (b"\xef\xbf\xbe", "noncharacter U+FFFE"),
)


def invalid_encoding(rng: random.Random, doc: bytes) -> tuple[bytes, str]:
    choice = rng.randrange(len(_BAD_BYTES) + 3)
    if choice < len(_BAD_BYTES):
        bad, label = _BAD_BYTES[choice]
        return _replace_text(rng, doc, bad), label
    if choice == len(_BAD_BYTES):
        return doc.decode("utf-8").encode("utf-16"), "utf-16 with BOM"
    if choice == len(_BAD_BYTES) + 1:
        decl = b'<?xml version="1.0" encoding="ISO-8859-1"?>'
        return decl + _replace_text(rng, doc, b"\xe9"), "latin-1 declared"
    return b"\xef\xbb\xbf" + doc, "utf-8 BOM"


def truncate(rng: random.Random, doc: bytes) -> tuple[bytes, str]:
    n = rng.randrange(len(doc)) if doc else 0
    return doc[:n], f"truncated at {n}"


def markup_noise(rng: random.Random, doc: bytes) -> tuple[bytes, str]:
    kind = rng.choice(("comment", "pi", "cdata", "charref", "whitespace"))
    if kind == "comment":
        at = _after_root_start(doc)
        return doc[:at] + b"<!-- fuzz -- -->" + doc[at:], "comment"
    if kind == "pi":
        at = _after_root_start(doc)
        return doc[:at] + b"<?fuzz x?>" + doc[at:], "processing instruction"
    spans = _text_spans(doc)
    if not spans:
        return doc, "no text"
    a, b = rng.choice(spans)
    text = doc[a:b]
    if kind == "cdata":
        new = b"<![CDATA[" + text + b"]]>"
    elif kind == "charref":
        new = b"".join(b"&#x%x;" % c for c in text)
    else:
        new = b" \n\t" + text + b"\t "
    return doc[:a] + new + doc[b:], kind


def byte_flip(rng: random.Random, doc: bytes) -> tuple[bytes, str]:
    if not doc:
        return b"\x00", "empty"
    raw = bytearray(doc)
    n = rng.choice((1, 1, 2, 4, 16))
    for _ in range(n):
        raw[rng.randrange(len(raw))] = rng.randrange(256)
    return bytes(raw), f"{n} random bytes"


def empty_or_junk(rng: random.Random, doc: bytes) -> tuple[bytes, str]:
    kind = rng.choice(("empty", "junk", "not-xml", "other-root"))
    if kind == "empty":
        return b"", "empty document"
    if kind == "junk":
        return rng.randbytes(rng.choice((1, 16, 512))), "random bytes"
    if kind == "not-xml":
        return b'{"json": true}', "not XML"
    return b'<Fuzz xmlns="urn:iso:std:iso:15118:-20:CommonMessages"/>', "unknown root"


DOC_MUTATORS: dict[str, tuple[DocMutator, int]] = {
    "doc.entities": (entities, 2),
    "doc.deep_nesting": (deep_nesting, 1),
    "doc.huge_text": (huge_text, 1),
    "doc.invalid_encoding": (invalid_encoding, 2),
    "doc.truncate": (truncate, 1),
    "doc.markup_noise": (markup_noise, 2),
    "doc.byte_flip": (byte_flip, 2),
    "doc.empty_or_junk": (empty_or_junk, 1),
}

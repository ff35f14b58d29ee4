"""The XSD reader and the EXI grammar builder, on a small schema of our own and on schemas/.

Expectations follow W3C EXI 1.0 §8.5 and the V2G profile (strict=false, so a state with n
productions uses ceil(log2(n + 1)) bits), worked out by hand in the comments.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from mcscomm.exi.bits import BitReader, BitWriter
from mcscomm.exi.codec import grammars
from mcscomm.exi.datatypes import (
    BinaryType,
    EnumerationType,
    IntegerType,
    NBitIntegerType,
    StringType,
    UnsignedIntegerType,
    datatype_for,
)
from mcscomm.exi.errors import ExiEncodeError, ExiSchemaError
from mcscomm.exi.grammar import AT, CH, EE, SE, SE_ANY, Grammars, State, width_for
from mcscomm.exi.stream import decode_document, decode_fragment, encode_document, encode_fragment
from mcscomm.exi.xsd import SchemaSet, SimpleType

T = "urn:test"

TINY = f"""<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns="{T}"
  targetNamespace="{T}" elementFormDefault="qualified">
  <xs:element name="Root" type="RootType"/>
  <xs:complexType name="RootType">
    <xs:sequence>
      <xs:element name="A" type="xs:string" minOccurs="0"/>
      <xs:element name="B" type="xs:unsignedShort" maxOccurs="3"/>
      <xs:choice>
        <xs:element name="C" type="xs:boolean"/>
        <xs:element name="D" type="xs:short"/>
      </xs:choice>
      <xs:element ref="Shape"/>
      <xs:element name="E" type="colour" minOccurs="0" maxOccurs="unbounded"/>
    </xs:sequence>
    <xs:attribute name="zeta" type="xs:string"/>
    <xs:attribute name="alpha" type="small" use="required"/>
  </xs:complexType>
  <xs:element name="Shape" type="ShapeType" abstract="true"/>
  <xs:complexType name="ShapeType"/>
  <xs:element name="Square" type="SquareType" substitutionGroup="Shape"/>
  <xs:complexType name="SquareType">
    <xs:complexContent><xs:extension base="ShapeType">
      <xs:sequence><xs:element name="Side" type="big"/></xs:sequence>
    </xs:extension></xs:complexContent>
  </xs:complexType>
  <xs:element name="Circle" type="ShapeType" substitutionGroup="Shape"/>
  <xs:element name="Note" type="NoteType"/>
  <xs:complexType name="NoteType" mixed="true">
    <xs:sequence><xs:element name="Em" type="xs:string" minOccurs="0"/>
      <xs:any namespace="##other" minOccurs="0"/></xs:sequence>
  </xs:complexType>
  <xs:simpleType name="colour"><xs:restriction base="xs:string">
    <xs:enumeration value="red"/><xs:enumeration value="green"/><xs:enumeration value="blue"/>
  </xs:restriction></xs:simpleType>
  <xs:simpleType name="small"><xs:restriction base="xs:int">
    <xs:minInclusive value="-10"/><xs:maxInclusive value="4085"/></xs:restriction></xs:simpleType>
  <xs:simpleType name="big"><xs:restriction base="xs:int">
    <xs:minInclusive value="-10"/><xs:maxInclusive value="4086"/></xs:restriction></xs:simpleType>
</xs:schema>
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Grammars:
    path = tmp_path_factory.mktemp("xsd") / "tiny.xsd"
    path.write_text(TINY)
    return Grammars(SchemaSet(path))


def labels(state: State) -> list[str]:
    return [p.label() for p in state.productions]


def q(local: str) -> str:
    return f"{{{T}}}{local}"


def test_width_rule() -> None:
    assert [width_for(n + 1) for n in range(1, 9)] == [1, 2, 2, 3, 3, 3, 3, 4]
    assert width_for(1) == 0


def test_document_grammar_sorts_globals_and_adds_wildcard(tiny: Grammars) -> None:
    # Globals sorted by local name: Circle, Note, Root, Shape, Square; + SE(*) = 6 -> 3 bits
    # (document content has no second level, so no escape slot).
    assert labels(tiny.document) == [
        f"SE({q(n)})" for n in ("Circle", "Note", "Root", "Shape", "Square")
    ] + ["SE(*)"]
    assert tiny.document.width == 3


def test_fragment_grammar_holds_all_declarations_once(tiny: Grammars) -> None:
    names = [p.label() for p in tiny.fragment.productions]
    # local A..E, Em, Side + globals; sorted; then SE(*) and ED
    assert names[:3] == [f"SE({q('A')})", f"SE({q('B')})", f"SE({q('C')})"]
    assert names[-2:] == ["SE(*)", "EE"]
    assert len(names) == 14 and tiny.fragment.width == 4


def test_attributes_sorted_and_required(tiny: Grammars) -> None:
    _decl, g = tiny.element_grammar("Root")
    s0 = g.start
    # alpha (required) comes first in sorted order; zeta is optional but sorts after alpha,
    # so the start state offers only AT(alpha): 1 production + escape -> 1 bit.
    assert [p.kind for p in s0.productions] == [AT]
    assert s0.width == 1
    s1 = s0.productions[0].target
    assert s1 is not None
    # After alpha: AT(zeta), SE(A), SE(B) (A optional) -> 3 + escape -> 2 bits
    assert labels(s1) == [
        "AT(zeta)[string]",
        f"SE({q('A')})",
        f"SE({q('B')})",
    ]
    assert s1.width == 2


def test_bounded_repetition_and_choice(tiny: Grammars) -> None:
    _decl, g = tiny.element_grammar("Root")
    after_alpha = g.start.productions[0].target
    assert after_alpha is not None
    b1 = after_alpha.productions[after_alpha.se[(T, "B")]].target
    assert b1 is not None
    # After the first B: another B, or the choice C | D: 3 + esc -> 2 bits
    assert labels(b1) == [f"SE({q('B')})", f"SE({q('C')})", f"SE({q('D')})"]
    b2 = b1.productions[0].target
    assert b2 is not None
    b3 = b2.productions[0].target
    assert b3 is not None
    # The third B is the last one allowed (maxOccurs=3): no SE(B) any more.
    assert labels(b3) == [f"SE({q('C')})", f"SE({q('D')})"]


def test_substitution_group_members_sorted_and_abstract_head_excluded(tiny: Grammars) -> None:
    _decl, g = tiny.element_grammar("Root")
    after_c = None
    for state in g.states:
        if (T, "C") in state.se:
            after_c = state.productions[state.se[(T, "C")]].target
            break
    assert after_c is not None
    assert labels(after_c) == [f"SE({q('Circle')})", f"SE({q('Square')})"]
    after_shape = after_c.productions[0].target
    assert after_shape is not None
    # E is optional and unbounded: SE(E), EE -> 2 bits; after an E the same again.
    assert labels(after_shape) == [f"SE({q('E')})", "EE"]
    after_e = after_shape.productions[0].target
    assert after_e is not None and labels(after_e) == labels(after_shape)
    assert after_e.productions[0].target is after_e


def test_mixed_content_and_wildcard(tiny: Grammars) -> None:
    _decl, g = tiny.element_grammar("Note")
    # mixed: SE(Em), SE(*) (##other), EE, CH[untyped]: 4 + esc -> 3 bits, EE before CH.
    assert labels(g.start) == [f"SE({q('Em')})", "SE(*)", "EE", "CH[untyped]"]
    assert [p.kind for p in g.start.productions] == [SE, SE_ANY, EE, CH]
    assert g.start.width == 3


def simple(schema: SchemaSet, name: tuple[str, str]) -> SimpleType:
    t = schema.type_by_name(name)
    assert isinstance(t, SimpleType)
    return t


def test_datatype_representations(tiny: Grammars) -> None:
    schema = tiny.schema
    small = datatype_for(simple(schema, (T, "small")))
    assert isinstance(small, NBitIntegerType) and small.width == 12  # 4096 values
    big = datatype_for(simple(schema, (T, "big")))
    assert isinstance(big, IntegerType)  # 4097 values and a negative minimum
    colour = datatype_for(simple(schema, (T, "colour")))
    assert isinstance(colour, EnumerationType) and colour.width == 2
    ushort = datatype_for(simple(schema, ("http://www.w3.org/2001/XMLSchema", "unsignedShort")))
    assert isinstance(ushort, UnsignedIntegerType)


def test_tiny_document_round_trip_and_hand_encoding(tiny: Grammars) -> None:
    xml = f'<Root xmlns="{T}" alpha="0"><B>300</B><D>-2</D><Circle/><E>blue</E></Root>'
    doc = etree.fromstring(xml)
    data = encode_document(tiny, doc)
    w = BitWriter()
    w.write(0x80, 8)
    w.write(2, 3)  # SE(Root) is #2 of 6 document productions
    w.write(0, 1)  # AT(alpha)
    w.write(10, 12)  # alpha = 0 -> offset 10 from the minimum -10, 12 bits
    w.write(2, 2)  # {AT(zeta), SE(A), SE(B)}: SE(B) = 2
    w.write(0, 1)  # CH of B
    w.write_uint(300)  # unsignedShort: Unsigned Integer
    w.write(0, 1)  # EE of B
    w.write(2, 2)  # {SE(B), SE(C), SE(D)}: D = 2
    w.write(0, 1)  # CH
    w.write(1, 1)  # sign: negative
    w.write_uint(1)  # magnitude - 1
    w.write(0, 1)  # EE of D
    w.write(0, 2)  # {SE(Circle), SE(Square)}: Circle = 0
    w.write(0, 1)  # Circle (empty type): EE only
    w.write(0, 2)  # {SE(E), EE}: E = 0
    w.write(0, 1)  # CH
    w.write(2, 2)  # blue = #2 of 3 -> 2 bits
    w.write(0, 1)  # EE of E
    w.write(1, 2)  # {SE(E), EE}: EE = 1
    assert data == w.getvalue()
    back = decode_document(tiny, data)
    assert [(e.tag, e.text, dict(e.attrib)) for e in back.iter()] == [
        (e.tag, e.text, dict(e.attrib)) for e in doc.iter()
    ]


def test_mixed_text_round_trip_and_wildcard_refused(tiny: Grammars) -> None:
    doc = etree.fromstring(f'<Note xmlns="{T}">hello <Em>you</Em> there</Note>')
    data = encode_document(tiny, doc)
    back = decode_document(tiny, data)
    assert back.text == "hello " and back[0].tail == " there"
    other = etree.fromstring(f'<Note xmlns="{T}"><x:Y xmlns:x="urn:other"/></Note>')
    with pytest.raises(ExiEncodeError, match="wildcard"):
        encode_document(tiny, other)


def test_fragment_of_several_elements(tiny: Grammars) -> None:
    a = etree.fromstring(f'<Circle xmlns="{T}"/>')
    b = etree.fromstring(f'<Square xmlns="{T}"><Side>7</Side></Square>')
    data = encode_fragment(tiny, [a, b])
    out = decode_fragment(tiny, data)
    assert [e.tag for e in out] == [q("Circle"), q("Square")]
    assert out[1].findtext(q("Side")) == "7"


def test_encoder_refuses_what_the_grammar_does_not_allow(tiny: Grammars) -> None:
    bad = [
        f'<Root xmlns="{T}"><B>1</B><C>true</C><Circle/></Root>',  # missing alpha
        f'<Root xmlns="{T}" alpha="5"><C>true</C><Circle/></Root>',  # missing B
        f'<Root xmlns="{T}" alpha="5"><B>1</B><C>true</C></Root>',  # missing shape
        f'<Root xmlns="{T}" alpha="9999"><B>1</B><C>true</C><Circle/></Root>',  # out of range
        f'<Root xmlns="{T}" alpha="5"><B>-1</B><C>true</C><Circle/></Root>',  # negative unsigned
        f'<Root xmlns="{T}" alpha="5"><B>1</B><C>maybe</C><Circle/></Root>',  # not a boolean
        f'<Root xmlns="{T}" alpha="5"><B>1</B><C>true</C><Circle/><E>pink</E></Root>',
        f'<Root xmlns="{T}" alpha="5" beta="1"><B>1</B><C>true</C><Circle/></Root>',
        f'<Root xmlns="{T}" alpha="5"><B>1</B><B>1</B><B>1</B><B>1</B><C>1</C><Circle/></Root>',
        f'<Other xmlns="{T}"/>',
    ]
    for xml in bad:
        with pytest.raises(ExiEncodeError):
            encode_document(tiny, etree.fromstring(xml))


def test_unsupported_schema_constructs_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.xsd"
    path.write_text(
        '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"><xs:element name="X">'
        '<xs:simpleType><xs:list itemType="xs:int"/></xs:simpleType></xs:element></xs:schema>'
    )
    with pytest.raises(ExiSchemaError):
        Grammars(SchemaSet(path))
    with pytest.raises(ExiSchemaError):
        SchemaSet(tmp_path / "missing.xsd")


def test_primitive_encodings() -> None:
    w = BitWriter()
    w.write_uint(0)
    w.write_uint(127)
    w.write_uint(128)
    w.write_uint(300)
    assert w.getvalue() == bytes([0x00, 0x7F, 0x80, 0x01, 0xAC, 0x02])
    r = BitReader(bytes([0x00, 0x7F, 0x80, 0x01, 0xAC, 0x02]))
    assert [r.read_uint() for _ in range(4)] == [0, 127, 128, 300]
    w = BitWriter()
    StringType().encode(w, "Hi")
    BinaryType(True, None).encode(w, "0aff")
    assert w.getvalue() == bytes([4, ord("H"), ord("i"), 2, 0x0A, 0xFF])


# -- the project's schemas --------------------------------------------------------------------
def test_schema_sets_have_the_iso_global_element_counts() -> None:
    # shared/exi-vectors/README §5: 54 / 48 global elements -> 6 bits; AppProtocol 2 -> 2 bits.
    for name, count, width in (("CommonMessages", 54, 6), ("DC", 48, 6), ("AppProtocol", 2, 2)):
        g = grammars(name)
        assert len(g.document.productions) == count + 1, name
        assert g.document.width == width, name


def test_fragment_grammars_match_libcbv2g_event_numbers() -> None:
    # libcbv2g (cbexigen) iso20 CommonMessages fragment coder: 9-bit codes, ED = 282,
    # MeteringConfirmationReq 119, PnC_AReqAuthorizationMode 151, SignedInfo 230,
    # SignedInstallationData 231; xmldsig fragment coder: 6 bits, SignedInfo 32.
    cm = grammars("CommonMessages").fragment
    names = [p.qname[1] if p.qname else None for p in cm.productions]
    assert cm.width == 9 and cm.ee == 282
    assert names.index("MeteringConfirmationReq") == 119
    assert names.index("PnC_AReqAuthorizationMode") == 151
    assert names.index("SignedInfo") == 230
    assert names.index("SignedInstallationData") == 231
    # DC fragment coder (encode_iso20_dc_exiFragment): 8 bits, SignedInfo 129, ED 150.
    dc = grammars("DC").fragment
    dc_names = [p.qname[1] if p.qname else None for p in dc.productions]
    assert dc.width == 8 and dc.ee == 150 and dc_names.index("SignedInfo") == 129
    ds = grammars("xmldsig").fragment
    assert ds.width == 6 and ds.ee == 46
    assert [p.qname[1] if p.qname else None for p in ds.productions].index("SignedInfo") == 32


def test_describe_is_readable() -> None:
    text = grammars("DC").describe("DC_ChargeLoopRes")
    assert text.splitlines()[0].startswith("element {urn:iso:std:iso:15118:-20:DC}DC_ChargeLoopRes")
    assert "SE({urn:iso:std:iso:15118:-20:CommonTypes}Header)" in text
    with pytest.raises(KeyError):
        grammars("DC").describe("NoSuchThing")


def test_endless_character_events_are_bounded(tiny: Grammars) -> None:
    from mcscomm.exi.errors import ExiLimitExceeded

    w = BitWriter()
    w.write(0x80, 8)
    w.write(1, 3)  # SE(Note)
    for _ in range(300):
        w.write(3, 3)  # CH[untyped] of {SE(Em), SE(*), EE, CH}: loops on the same state
        StringType().encode(w, "a")
    w.write(2, 3)  # EE
    with pytest.raises(ExiLimitExceeded, match="character events"):
        decode_document(tiny, w.getvalue())

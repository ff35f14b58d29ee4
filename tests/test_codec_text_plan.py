"""The XmlCodec's fast encode path (text plans): byte-identical to the lxml tree path, validated,
and falling back to the tree path for everything it does not handle itself."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from mcscomm.codec import SchemaViolation, XmlCodec
from mcscomm.codec.base import MESSAGE_CLASSES
from mcscomm.messages.dc import DC_ChargeLoopReq
from mcscomm.messages.examples import example
from mcscomm.messages.rational import RationalNumber
from mcscomm.messages.strategies import strategy_for

ALL = sorted(MESSAGE_CLASSES.values(), key=lambda c: c.__name__)


@pytest.fixture(scope="module")
def codec() -> XmlCodec:
    return XmlCodec()


def _tree_bytes(codec: XmlCodec, msg: Any) -> bytes:
    out = etree.tostring(codec.to_element(msg), encoding="UTF-8", xml_declaration=False)
    assert isinstance(out, bytes)
    return out


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_text_plan_matches_tree_bytes(codec: XmlCodec, cls: type, signed: bool) -> None:
    msg: Any = example(cls, with_signature=signed)
    text = codec.to_text(msg)
    tree = _tree_bytes(codec, msg)
    if text is None:  # only where lxml would declare a namespace locally
        assert b"xmlns:ns0=" in tree
    else:
        assert text == tree
    assert codec.encode(msg) == tree


def test_charge_loop_takes_the_text_path(codec: XmlCodec) -> None:
    assert codec.to_text(example(DC_ChargeLoopReq)) is not None


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_property_text_plan_matches_tree(codec: XmlCodec, cls: type, data: st.DataObject) -> None:
    msg = data.draw(strategy_for(cls))
    text = codec.to_text(msg)
    tree = _tree_bytes(codec, msg)
    if text is not None:
        assert text == tree
    assert codec.encode(msg) == tree


def test_invalid_value_still_reported_with_its_path(codec: XmlCodec) -> None:
    msg = example(DC_ChargeLoopReq)
    bad = dataclasses.replace(msg, ev_present_voltage=RationalNumber(40000, 0))  # > int16
    assert codec.to_text(bad) is not None  # the text plan writes it; validation refuses it
    with pytest.raises(SchemaViolation) as info:
        codec.encode(bad)
    assert "Value" in str(info.value) or "40000" in str(info.value)


def test_wrong_type_falls_back_to_the_tree_error(codec: XmlCodec) -> None:
    msg = example(DC_ChargeLoopReq)
    bad = dataclasses.replace(msg, ev_present_voltage=RationalNumber(True, 0))  # bool, not int
    assert codec.to_text(bad) is None
    with pytest.raises(SchemaViolation):
        codec.encode(bad)


def test_text_needing_escapes_takes_the_tree_path(codec: XmlCodec) -> None:
    from mcscomm.messages.common_messages import SessionSetupReq

    msg = example(SessionSetupReq)
    odd = dataclasses.replace(msg, evccid="A&B<C>")
    assert codec.to_text(odd) is None
    out = codec.encode(odd)
    assert b"A&amp;B&lt;C&gt;" in out
    assert codec.decode(codec.payload_type_for(odd), out) == odd

"""SupportedAppProtocol handshake messages (``V2G_CI_AppProtocol.xsd``, V2GTP payload 0x8001).

The AppProtocol schema has no ``elementFormDefault``, so only the root elements are qualified;
their children are unqualified (facts §3, exi-vectors README §3).
"""

# Field defaults are metadata-carrying dataclasses.field() calls made by meta.el/attr/choice.

from __future__ import annotations

from dataclasses import dataclass

from mcscomm.messages.enums import AppProtocolResponseCode
from mcscomm.messages.meta import NS_APP, UINT, Simple, el, enum_type, xmltype

PROTOCOL_NAMESPACE = Simple("protocolNamespaceType", "uri", max_length=100)
SCHEMA_ID = Simple("idType", "int", 0, 255)
PRIORITY = Simple("priorityType", "int", 1, 20)


@xmltype(None)
@dataclass(slots=True, kw_only=True)
class AppProtocol:
    """``AppProtocolType``: one protocol the EVCC offers (priority 1 is the highest)."""

    protocol_namespace: str = el("ProtocolNamespace", None, PROTOCOL_NAMESPACE)
    version_number_major: int = el("VersionNumberMajor", None, UINT)
    version_number_minor: int = el("VersionNumberMinor", None, UINT)
    schema_id: int = el("SchemaID", None, SCHEMA_ID)
    priority: int = el("Priority", None, PRIORITY)


@xmltype(NS_APP, "supportedAppProtocolReq")
@dataclass(slots=True, kw_only=True)
class SupportedAppProtocolReq:
    """``supportedAppProtocolReq``: 1..20 offered protocols."""

    app_protocol: list[AppProtocol] = el("AppProtocol", None, AppProtocol, max_occurs=20)


@xmltype(NS_APP, "supportedAppProtocolRes")
@dataclass(slots=True, kw_only=True)
class SupportedAppProtocolRes:
    """``supportedAppProtocolRes``: the verdict and, on success, the chosen SchemaID."""

    response_code: AppProtocolResponseCode = el(
        "ResponseCode", None, enum_type(AppProtocolResponseCode, "responseCodeType")
    )
    schema_id: int | None = el("SchemaID", None, SCHEMA_ID, min_occurs=0)


ROOT_MESSAGES: tuple[type, ...] = (SupportedAppProtocolReq, SupportedAppProtocolRes)

"""CertificateInstallation (facts §4.3 row 2a, §6.2): placeholder until implemented."""

from __future__ import annotations

from typing import Any


def certificate_installation(req: Any, ctx: Any, header: Any) -> Any:
    raise NotImplementedError


def build_installation_request(session: Any, now: float) -> Any:
    raise NotImplementedError


def accept_installation(session: Any, res: Any, now: float) -> None:
    raise NotImplementedError

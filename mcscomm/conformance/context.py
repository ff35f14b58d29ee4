"""What a case function receives: the PICS, the SUT launcher, the log, and tester factories."""

from __future__ import annotations

from typing import Any

from mcscomm.conformance.channel import Channel
from mcscomm.conformance.model import Inconclusive
from mcscomm.conformance.pics import Pics
from mcscomm.conformance.tester_evcc import TesterEvcc
from mcscomm.conformance.tester_secc import TesterSecc
from mcscomm.conformance.tlsvariants import PkiSet
from mcscomm.conformance.wire import Log
from mcscomm.messages.enums import AuthorizationType, ControlMode, ServiceId


class CaseContext:
    """One case's view of the test system. Channels opened here are closed by the runner."""

    def __init__(self, pics: Pics, sut: Any, pkis: PkiSet | None) -> None:
        self.pics = pics
        self.sut = sut
        self.pkis = pkis
        self.log = Log()
        self._channels: list[Channel] = []

    @property
    def manifest(self) -> Any:
        return self.pkis.good if self.pkis is not None else None

    @property
    def virtual(self) -> bool:
        return bool(self.sut.virtual)

    @property
    def tol(self) -> float:
        return 0.0 if self.virtual else self.pics.pixit.tolerance_s

    def open(self, **wishes: Any) -> Channel:
        ch: Channel = self.sut.open(**wishes)
        self._channels.append(ch)
        self.log.note(ch.now(), "connection opened")
        return ch

    def evcc(self) -> TesterEvcc:
        """A tester EVCC on a new connection to the SECC under test."""
        return TesterEvcc(self.open(), self.pics, self.log, manifest=self.manifest)

    def secc(
        self,
        service: ServiceId | None = None,
        control: ControlMode | None = None,
        auth: AuthorizationType | None = None,
        **wishes: Any,
    ) -> TesterSecc:
        """A tester SECC for a new connection from the EVCC under test, offering only
        ``service`` / ``control`` / ``auth`` when given (our in-process EVCC is configured
        to want exactly them)."""
        if auth is AuthorizationType.PNC and self.manifest is None:
            raise Inconclusive("PnC needs the PIXIT pki_dir")
        ch = self.open(service=service, control=control, auth=auth, **wishes)
        return TesterSecc(
            ch,
            self.pics,
            self.log,
            manifest=self.manifest,
            services=(service,) if service is not None else None,
            controls=(control,) if control is not None else None,
            auths=(auth,) if auth is not None else None,
        )

    def close(self) -> None:
        for ch in self._channels:
            try:
                ch.close()
            except Exception:  # closing is best effort; the verdict is already decided
                pass
        self._channels.clear()

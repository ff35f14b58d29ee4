"""pytest plugin (entry point ``pytest11``): fixtures to write conformance scripts in a few lines.

Importing this module is cheap and has no side effects: everything heavy is imported inside the
fixtures. Fixtures:

* ``conformance_pics`` -- the PICS (``--mcscomm-pics FILE``, default: our full feature set);
* ``conformance_pkis`` -- the PKIs (``--mcscomm-pki DIR`` or the default PKI, created once);
* ``sut_launcher`` -- ``launch(role, fault=None)``: our in-process endpoint (or the real SUT given
  by ``--mcscomm-connect HOST:PORT`` / ``--mcscomm-listen HOST:PORT``), closed after the test;
* ``tester_evcc`` -- a :class:`~mcscomm.conformance.tester_evcc.TesterEvcc` connected to the
  SECC under test; ``tester_secc`` -- a :class:`~mcscomm.conformance.tester_secc.TesterSecc`
  serving the EVCC under test;
* ``conformance_run`` -- ``run(pattern, role="secc", fault=None)``: catalogue cases as results;
* helpers on the testers: ``send`` / ``send_raw`` (crafted messages), ``expect_code(message,
  *codes)``, ``expect_failure``, ``expect_closed``, ``run_to(plan, stage)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mcscomm", "mcscomm conformance fixtures")
    group.addoption("--mcscomm-pics", metavar="FILE", help="PICS/PIXIT TOML for the fixtures")
    group.addoption("--mcscomm-pki", metavar="DIR", help="PKI directory for TLS and PnC")
    group.addoption("--mcscomm-connect", metavar="HOST:PORT", help="test this SECC, not ours")
    group.addoption("--mcscomm-listen", metavar="HOST:PORT", help="wait here for an EVCC")


@pytest.fixture(scope="session")
def conformance_pics(pytestconfig: pytest.Config) -> Any:
    from mcscomm.conformance.pics import Pics, load_pics

    path = pytestconfig.getoption("--mcscomm-pics", default=None)
    return load_pics(path) if path else Pics()


@pytest.fixture(scope="session")
def conformance_pkis(pytestconfig: pytest.Config, conformance_pics: Any) -> Any:
    from mcscomm.conformance.sut import prepare_pkis

    return prepare_pkis(conformance_pics, pytestconfig.getoption("--mcscomm-pki", default=None))


@pytest.fixture
def sut_launcher(
    pytestconfig: pytest.Config, conformance_pics: Any, conformance_pkis: Any
) -> Iterator[Callable[..., Any]]:
    from mcscomm.conformance.model import Role
    from mcscomm.conformance.sut import launcher

    made: list[Any] = []

    def launch(role: str = "secc", fault: str | None = None) -> Any:
        r = Role(role)
        pics = conformance_pics.with_role(role)
        connect = pytestconfig.getoption("--mcscomm-connect", default=None)
        listen = pytestconfig.getoption("--mcscomm-listen", default=None)
        sut = launcher(
            r,
            pics,
            conformance_pkis,
            connect=connect if r is Role.SECC else None,
            listen=listen if r is Role.EVCC else None,
            fault=fault,
        )
        made.append(sut)
        return sut

    yield launch
    for sut in made:
        sut.close()


@pytest.fixture
def tester_evcc(sut_launcher: Callable[..., Any], conformance_pkis: Any) -> Iterator[Any]:
    """A tester EVCC on a fresh connection to the SECC under test."""
    from mcscomm.conformance.context import CaseContext

    sut = sut_launcher("secc")
    ctx = CaseContext(sut.pics, sut, conformance_pkis)
    try:
        yield ctx.evcc()
    finally:
        ctx.close()


@pytest.fixture
def tester_secc(sut_launcher: Callable[..., Any], conformance_pkis: Any) -> Iterator[Any]:
    """A tester SECC for a fresh connection from the EVCC under test (default wishes)."""
    from mcscomm.conformance.context import CaseContext

    sut = sut_launcher("evcc")
    ctx = CaseContext(sut.pics, sut, conformance_pkis)
    try:
        yield ctx.secc()
    finally:
        ctx.close()


@pytest.fixture
def conformance_run(
    sut_launcher: Callable[..., Any], conformance_pics: Any, conformance_pkis: Any
) -> Callable[..., list[Any]]:
    """``run(pattern, role="secc", fault=None)`` -> list of CaseResult for catalogue cases."""
    from mcscomm.conformance import catalogue
    from mcscomm.conformance.runner import run as run_cases

    def run(pattern: str, role: str = "secc", fault: str | None = None) -> list[Any]:
        cases = catalogue.select(role, pattern)
        pics = conformance_pics.with_role(role)
        report = run_cases(cases, lambda: sut_launcher(role, fault), pics, conformance_pkis)
        return report.results

    return run

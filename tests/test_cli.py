"""The top-level CLI: command table and dispatch."""

from __future__ import annotations

import pytest

from mcscomm import cli


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    out = capsys.readouterr().out
    for name in cli.COMMANDS:
        assert name in out


def test_every_command_module_has_the_contract() -> None:
    import importlib

    for name, (module_name, _help) in cli.COMMANDS.items():
        module = importlib.import_module(module_name)
        assert isinstance(module.HELP, str) and module.HELP, name
        assert callable(module.configure) and callable(module.run), name


def test_an_unexpected_error_is_one_line_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from mcscomm.commands import codec

    def broken(_args: object) -> int:
        raise RuntimeError("boom")

    monkeypatch.setattr(codec, "run", broken)
    assert cli.main(["codec", "list"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "mcscomm codec: internal error: RuntimeError: boom (run with -vv for the traceback)"
    ]
    with pytest.raises(RuntimeError):
        cli.main(["-vv", "codec", "list"])

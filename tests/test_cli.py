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

"""The top-level CLI: each plain command builds only its owner's parser, and the map of owners is
exactly what the command modules register."""

from __future__ import annotations

import argparse

import pytest

from zsmed.cli import main as cli


def _top_level(parser: argparse.ArgumentParser) -> set[str]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return set(action.choices) - set(cli.GROUPS)


def test_command_owners_match_what_the_modules_register() -> None:
    registered = {module: _top_level(cli.build_parser((module,))) for module in cli.COMMAND_MODULES}
    owners = {name: module for module, names in registered.items() for name in names}
    assert owners == cli.COMMAND_OWNERS
    assert _top_level(cli.build_parser()) == set(cli.COMMAND_OWNERS)


@pytest.mark.parametrize(("argv", "expected"), [
    (["predict", "b.zsmb", "x.jpg"], ("zsmed.cli.bundle_commands",)),
    (["-v", "scan", "folder"], ("zsmed.cli.dicom_commands",)),
    (["eval", "zeroshot", "d"], cli.COMMAND_MODULES),  # groups span modules
    (["--help"], cli.COMMAND_MODULES),
    (["-h", "predict"], cli.COMMAND_MODULES),
    (["predcit"], cli.COMMAND_MODULES),  # a typo gets the full list of choices in its error
])
def test_only_the_owner_is_built(argv: list[str], expected: tuple[str, ...]) -> None:
    assert tuple(cli._modules_for(argv)) == tuple(expected)


def test_predict_help_still_works(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        cli.main(["predict", "--help"])
    assert stop.value.code == 0
    assert "--frames" in capsys.readouterr().out

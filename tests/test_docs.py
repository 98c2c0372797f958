"""The documentation stays true: every command is documented and has help."""

from pathlib import Path

import typer.main

from monthlydocs.cli import app

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _commands(group, prefix=()):
    for name, command in group.commands.items():
        path = (*prefix, name)
        if hasattr(command, "commands"):
            yield from _commands(command, path)
        else:
            yield path, command


def test_every_command_is_in_the_readme_and_has_help():
    commands = list(_commands(typer.main.get_command(app)))
    assert len(commands) > 15
    for path, command in commands:
        name = " ".join(path)
        assert command.help and command.help.strip(), f"{name} has no help"
        assert "Example:" in command.help, f"{name}'s help has no example"
        assert f"monthlydocs {name}" in README, f"{name} is not in the README"
def test_quick_start_is_the_two_commands():
    start = README.index("## Quick start")
    block = README[start:].split("```")[1]
    assert block.split() == ["sh", "make", "demo", "make", "test"]


def test_every_setting_is_in_the_readme():
    from monthlydocs.config import SCHEMA

    for section, keys in SCHEMA.items():
        assert f"[{section}]" in README
        for key in keys:
            assert f"`{key}`" in README, f"{section}.{key} is not in the README"

"""`dfscan --help` and every command's help: each option says what it does and its default, a flag reads
as a flag (not "--full <bool>"), and the README's command table names every option."""

from __future__ import annotations

import re

import pytest
import typer.main
from typer.testing import CliRunner

from dfscan.cli import app
from dfscan.scanner.config import DEFAULT_EXTENSIONS
from tests.scanner.conftest import REPO

GROUP = typer.main.get_command(app)
COMMANDS = sorted(GROUP.commands)
runner = CliRunner()


def _options(command):
    ctx = command.make_context(command.name or "dfscan", [], resilient_parsing=True)
    return ctx, [p for p in command.get_params(ctx) if p.param_type_name == "option"]


def test_every_command_is_walked():
    assert COMMANDS == ["app", "bench", "compact", "demo", "evaluate", "frames", "probe", "report", "run", "synth", "train"]


@pytest.mark.parametrize("name", [None, *COMMANDS])
def test_every_option_has_help_and_states_its_default(name):
    command = GROUP if name is None else GROUP.commands[name]
    ctx, options = _options(command)
    assert options and options[-1].name == "help"
    for option in options:
        names, text = option.get_help_record(ctx)
        assert option.help and option.help.strip(), f"{name} {names}: no help"
        if option.type_descriptor.annotation is bool:  # a switch: given or not, never given a value
            assert option.is_flag and not option.default, f"{name} {names}"  # off unless given
            assert "<" not in names, f"{name} {names}"  # not "--json <bool>"
        elif option.required:
            assert "[required]" in text, f"{name} {names}"
        else:  # typer prints a default it knows; a None default is explained in words
            assert "[default: " in text or "default" in option.help.lower(), f"{name} {names}: no default stated"


@pytest.mark.parametrize("name", [None, *COMMANDS])
def test_help_shows_flags_as_flags(name):
    result = runner.invoke(app, ([] if name is None else [name]) + ["--help"])
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output
    assert re.search(r"^  --help\s+Show this message and exit\.$", result.output, re.MULTILINE)
    if name == "run":
        assert re.search(r"^  --full\s+Rescan every file\.$", result.output, re.MULTILINE)
        assert re.search(r"^  --batch-size <int>\s+Videos per batch", result.output, re.MULTILINE)
        assert re.search(r"^  --workers <int>\s+CPU workers .* default one per\s+two cores\.", result.output,
                         re.MULTILINE | re.DOTALL)


def test_extensions_help_lists_the_default_extensions():
    ctx, options = _options(GROUP.commands["run"])
    (extensions,) = [o for o in options if o.name == "extensions"]
    assert ", ".join(DEFAULT_EXTENSIONS) in " ".join(extensions.help.split())


def test_readme_command_table_names_every_option():
    readme = (REPO / "README.md").read_text()
    table = readme[readme.index("## Commands"):]
    table = table[:table.index("\n\n", table.index("| command |"))]
    rows = {}
    for line in table.splitlines():
        match = re.match(r"\| `dfscan (\w+)", line)
        if match:
            rows[match.group(1)] = rows.get(match.group(1), "") + line
    assert sorted(rows) == COMMANDS
    for name in COMMANDS:
        _, options = _options(GROUP.commands[name])
        for option in options:
            if option.name == "help":
                continue
            for flag in option.opts:
                assert re.search(re.escape(flag) + r"(?![\w-])", rows[name]), f"README: dfscan {name} lacks {flag}"

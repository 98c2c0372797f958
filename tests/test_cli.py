"""The command line as a person uses it: one clear line on errors, no tracebacks."""

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from monthlydocs.cli import app

ROOT = Path(__file__).resolve().parent.parent
NOW_FOR_DEMO = datetime(2026, 12, 1, tzinfo=UTC)


def run(*args, env=None):
    return CliRunner().invoke(app, list(args), env=env)


def test_init_creates_a_workspace_and_refuses_to_overwrite(tmp_path):
    result = run("init", str(tmp_path / "firm"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "firm" / "monthlydocs.toml").is_file()
    assert (tmp_path / "firm" / "monthlydocs.db").is_file()
    assert (tmp_path / "firm" / "files").is_dir()
    assert (tmp_path / "firm" / "outbox").is_dir()
    again = run("init", str(tmp_path / "firm"))
    assert again.exit_code == 1
    assert again.stderr.startswith("Error: ") and "already holds" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1


def test_no_config_is_one_line_saying_how_to_create_one(tmp_path):
    result = run("client", "list")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "Error: No monthlydocs.toml here. Create a workspace with `monthlydocs init "
        "DIR`, then run commands inside DIR or pass --config DIR/monthlydocs.toml."
    )


def test_config_from_environment_variable(tmp_path, workspace):
    result = run("client", "list", env={"MONTHLYDOCS_CONFIG": str(workspace)})
    assert result.exit_code == 0
    assert "0 clients" in result.stdout


def test_client_lifecycle(cli, settings):
    added = cli(
        "client",
        "add",
        "Boulangerie Dupont",
        "--email",
        "marie@dupont.fr",
        "--phone",
        "06 12 34 56 78",
        "--language",
        "Français",
    )
    assert added.exit_code == 0 and "Added client #1" in added.stdout
    cli("template", "add", "vat", "--name", "VAT", "--cadence", "quarterly")
    cli(
        "client",
        "add",
        "Café Lumière",
        "--email",
        "cafe@lumiere.fr",
        "--template",
        "vat",
    )
    rows = json.loads(cli("client", "list", "--json").stdout)
    assert [(r["name"], r["phone"], r["language"], r["templates"]) for r in rows] == [
        ("Boulangerie Dupont", "+33612345678", "fr", None),
        ("Café Lumière", None, None, "vat"),
    ]
    edited = cli("client", "edit", "dupont", "--language", "de")
    assert "Updated #1 Boulangerie Dupont: language" in edited.stdout
    shown = cli("client", "show", "marie@dupont.fr").stdout
    assert "Language:  de" in shown and "client:updated" in shown
    assert cli("client", "assign", "--all", "--template", "vat").stdout.startswith(
        "Assigned vat to 1 clients (1 already had it)"
    )
    archived = cli("client", "remove", "dupont")
    assert "Archived #1" in archived.stdout
    assert [r["name"] for r in json.loads(cli("client", "list", "--json").stdout)] == [
        "Café Lumière"
    ]


def test_erase_asks_for_confirmation(cli):
    cli("client", "add", "A", "--email", "a@example.com")
    refused = cli("client", "remove", "A", "--erase", input="n\n")
    assert refused.exit_code == 1
    assert json.loads(cli("client", "list", "--json").stdout)
    erased = cli("client", "remove", "A", "--erase", input="y\n")
    assert erased.exit_code == 0 and "Erased #1 A" in erased.stdout
    assert json.loads(cli("client", "list", "--json", "--archived").stdout) == []


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["client", "add", "X", "--email", "nope"],
            "Error: Invalid email address 'nope'",
        ),
        (
            ["client", "add", "X", "--email", "x@example.com", "--phone", "123"],
            "Error: Invalid phone number '123'",
        ),
        (
            ["client", "add", "X", "--email", "x@example.com", "--language", "tlh"],
            "Error: Unknown language 'tlh'",
        ),
        (["client", "show", "nobody"], "Error: No client matches 'nobody'"),
        (["template", "show", "nothing"], "Error: No template 'nothing'"),
        (["template", "load", "missing.toml"], "Error: No such file: missing.toml"),
        (["generate", "--template", "nothing"], "Error: No template 'nothing'"),
        (["link", "nobody"], "Error: No client matches 'nobody'"),
    ],
)
def test_user_errors_are_one_line_without_traceback(cli, args, message):
    result = cli(*args)
    assert result.exit_code == 1
    assert result.stderr.startswith(message), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output + result.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["generate", "--template", "monthly", "--due", "tomorrow"],
            "Error: Invalid value for --due: 'tomorrow' is not a date like 2026-12-10"
            " (see `monthlydocs generate --help`)",
        ),
        (
            ["generate", "--period", "2026-12"],
            "Error: --period needs --template (see `monthlydocs generate --help`)",
        ),
        (
            ["client", "assign", "--template", "vat"],
            "Error: name at least one client, or use --all (client assign C... "
            "--template SLUG) (see `monthlydocs client assign --help`)",
        ),
        (
            ["client", "add", "X"],
            "Error: Missing option '--email' / '-e'. (see `monthlydocs client add "
            "--help`)",
        ),
        (["status", "--bogus"], "Error: No such option: --bogus"),
    ],
)
def test_usage_errors_are_one_line_with_exit_code_2(cli, args, message):
    result = cli(*args)
    assert result.exit_code == 2
    assert result.stderr.strip() == message or (
        result.stderr.startswith(message)
        and len(result.stderr.strip().splitlines()) == 1
    ), result.stderr
    assert "Usage:" not in result.output


def test_config_given_a_folder_is_one_line(tmp_path, workspace):
    result = run("--config", str(workspace.parent), "client", "list")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"Error: --config {workspace.parent} is a folder: give the file, e.g. "
        f"--config {workspace} (see `monthlydocs --help`)"
    ]
    unknown = run("--bogus", "client", "list")
    assert unknown.exit_code == 2
    assert len(unknown.stderr.strip().splitlines()) == 1
    assert unknown.stderr.startswith("Error: No such option: --bogus")


def test_verbose_shows_the_usage_block_and_a_bare_group_its_help(cli):
    verbose = cli("--verbose", "generate", "--period", "2026-12")
    assert verbose.exit_code == 2
    assert "Usage: monthlydocs generate" in verbose.stderr
    assert "Error: --period needs --template" in verbose.stderr
    bare = cli("client")
    assert "Commands:" in bare.output and "assign" in bare.output


def test_verbose_shows_the_traceback(cli):
    from typer.testing import CliRunner as Runner

    result = Runner().invoke(
        app, ["--config", str(cli.config), "--verbose", "client", "show", "nobody"]
    )
    assert result.exit_code == 1
    assert "Traceback" in result.stderr and "ClientNotFound" in result.stderr


def test_templates_from_the_command_line(cli):
    assert (
        cli(
            "template",
            "add",
            "vat",
            "--name",
            "VAT",
            "--cadence",
            "quarterly",
            "--due-day",
            "15",
        ).exit_code
        == 0
    )
    cli("template", "slot", "vat", "Sales ledger", "-d", "Your sales", "--multiple")
    cli("template", "slot", "vat", "Customs", "--optional")
    shown = cli("template", "show", "vat").stdout
    assert "quarterly, due on day 15" in shown and "Your sales" in shown
    assert (
        "Removed slot" in cli("template", "slot", "vat", "Customs", "--remove").stdout
    )
    bad = cli("template", "add", "weekly", "--name", "W", "--cadence", "weekly")
    assert bad.exit_code == 1 and "Cadence 'weekly' is not one of" in bad.stderr
    loaded = cli("template", "load", str(ROOT / "templates.example.toml"))
    assert "Created template monthly" in loaded.stdout
    assert "Updated template vat" in loaded.stdout
    listing = cli("template", "list").stdout
    assert "monthly" in listing and "payroll" in listing
    assert "deleted" in cli("template", "remove", "payroll").stdout


def test_template_add_again_changes_only_the_options_given(cli, settings):
    from monthlydocs.db import open_db
    from monthlydocs.templates import get_template

    cli(
        "template",
        "add",
        "vat",
        "--name",
        "VAT",
        "--cadence",
        "quarterly",
        "--due-day",
        "15",
        "--description",
        "Every quarter",
    )
    again = cli("template", "add", "vat", "--name", "VAT return")
    assert again.exit_code == 0 and "Updated template vat" in again.stdout
    db = open_db(settings.database_path)
    row = get_template(db, "vat")
    assert (row["name"], row["cadence"], row["due_day"], row["description"]) == (
        "VAT return",
        "quarterly",
        15,
        "Every quarter",
    )
    cli("template", "add", "payroll", "--name", "Payroll")
    new = get_template(db, "payroll")
    assert (new["cadence"], new["due_day"], new["description"]) == ("monthly", 10, "")


def test_help_lists_every_command():
    result = run("--help")
    for command in (
        "init",
        "demo",
        "client",
        "template",
        "generate",
        "link",
        "status",
        "email-test",
    ):
        assert command in result.stdout


def test_installed_script_end_to_end(tmp_path):
    """The real `monthlydocs` program in a subprocess, as cron would run it."""
    script = Path(sys.executable).parent / "monthlydocs"
    env = {**os.environ, "MONTHLYDOCS_CONFIG": str(tmp_path / "w" / "monthlydocs.toml")}

    def call(*args):
        return subprocess.run(
            [str(script), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            cwd=tmp_path,
        )

    assert call("init", str(tmp_path / "w")).returncode == 0
    assert (
        call("template", "load", str(ROOT / "templates.example.toml")).returncode == 0
    )
    assert (
        call(
            "client",
            "add",
            "Müller GmbH",
            "--email",
            "m@example.de",
            "--language",
            "de",
            "--template",
            "monthly",
        ).returncode
        == 0
    )
    generated = call("generate", "--template", "monthly", "--period", "2026-12")
    assert generated.returncode == 0, generated.stderr
    assert "Emails sent: 1, failed: 0" in generated.stdout
    assert len(list((tmp_path / "w" / "outbox").glob("*.eml"))) == 1
    link = call("link", "müller")
    assert link.stdout.startswith("http://127.0.0.1:8000/c/")
    assert len(link.stdout.strip().splitlines()) == 1
    missing = call("client", "show", "nobody")
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    module = subprocess.run(
        [sys.executable, "-m", "monthlydocs", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert module.returncode == 0 and "generate" in module.stdout
    shim = subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shim.returncode == 0 and "generate" in shim.stdout


def test_demo_builds_a_workspace_with_links(tmp_path):
    result = run("demo", str(tmp_path / "demo"))
    assert result.exit_code == 0, result.output
    outbox = list((tmp_path / "demo" / "outbox").glob("*.eml"))
    assert len(outbox) == 12
    assert result.stdout.count("http://127.0.0.1:8000/c/") >= 12
    from monthlydocs.db import open_db
    from monthlydocs.users import authenticate
    from monthlydocs.workspace import DEMO_STAFF

    assert f"sign in as {DEMO_STAFF[0]}, password {DEMO_STAFF[1]}" in result.stdout
    db = open_db(tmp_path / "demo" / "monthlydocs.db")
    assert authenticate(db, *DEMO_STAFF, NOW_FOR_DEMO)["email"] == DEMO_STAFF[0]
    again = run("demo", str(tmp_path / "demo"))
    assert again.exit_code == 1 and "already holds" in again.stderr
    assert run("demo", "--reset", str(tmp_path / "demo")).exit_code == 0

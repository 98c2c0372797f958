import re
from pathlib import Path

import pytest

from monthlydocs.config import SCHEMA, find_config, load_settings, settings_from_dict
from monthlydocs.errors import ConfigError, ConfigNotFound
from monthlydocs.workspace import create_workspace, example_config

ROOT = Path(__file__).resolve().parent.parent


def test_example_documents_every_key_with_a_comment():
    text = example_config()
    for section, keys in SCHEMA.items():
        assert f"[{section}]" in text
        for key in keys:
            match = re.search(rf"# .+\n{key} = ", text)
            assert match, f"{section}.{key} is missing or has no comment in the example"


def test_top_level_examples_are_the_packaged_ones():
    assert (ROOT / "config.example.toml").read_text() == example_config()
    assert (ROOT / "templates.example.toml").exists()


def test_defaults_come_from_the_example(tmp_path):
    settings = create_workspace(tmp_path / "w")
    assert settings.firm.timezone == "Europe/Paris"
    assert settings.firm.default_language == "en"
    assert settings.portal.base_url == "http://127.0.0.1:8000"
    assert settings.email.backend == "file"
    assert settings.reminders.days == [3, 5, 7]
    assert settings.reminders.send_hours == "08:00-19:00"
    assert settings.reminders.weekdays_only is False
    assert settings.storage.max_upload_mb == 25
    assert len(settings.firm.secret_key) >= 40


def test_paths_are_relative_to_the_file(tmp_path, monkeypatch):
    settings = create_workspace(tmp_path / "w")
    monkeypatch.chdir(tmp_path)
    assert settings.database_path == (tmp_path / "w" / "monthlydocs.db").resolve()
    assert settings.files_dir.is_dir()
    assert settings.outbox_dir.is_dir()
    assert settings.database_path.is_file()


def test_init_refuses_an_existing_workspace(tmp_path):
    from monthlydocs.errors import WorkspaceExists

    create_workspace(tmp_path / "w")
    before = (tmp_path / "w" / "monthlydocs.toml").read_text()
    with pytest.raises(WorkspaceExists):
        create_workspace(tmp_path / "w")
    assert (tmp_path / "w" / "monthlydocs.toml").read_text() == before


def test_environment_overrides_the_file(tmp_path):
    settings = create_workspace(tmp_path / "w")
    env = {
        "MONTHLYDOCS_EMAIL_PASSWORD": "s3cret",
        "MONTHLYDOCS_EMAIL_PORT": "2525",
        "MONTHLYDOCS_REMINDERS_DAYS": "2,4",
        "MONTHLYDOCS_REMINDERS_WEEKDAYS_ONLY": "true",
    }
    overridden = load_settings(settings.path, environ=env)
    assert overridden.email.password == "s3cret"
    assert overridden.email.port == 2525
    assert overridden.reminders.days == [2, 4]
    assert overridden.reminders.weekdays_only is True


def test_password_env_reads_the_named_variable(monkeypatch):
    settings = settings_from_dict({"email": {"password_env": "SMTP_PASS"}}, environ={})
    monkeypatch.setenv("SMTP_PASS", "from-env")
    assert settings.smtp_password() == "from-env"


@pytest.mark.parametrize(
    "data, message",
    [
        ({"firm": {"timezone": "Mars/Olympus"}}, "not an IANA time zone"),
        ({"firm": {"default_language": "it"}}, "default_language must be one of"),
        ({"email": {"backend": "pigeon"}}, 'email.backend must be "file" or "smtp"'),
        ({"email": {"port": "25"}}, "email.port in the configuration must be a whole"),
        ({"reminders": {"send_hours": "19:00-08:00"}}, "must end after it starts"),
        ({"reminders": {"send_hours": "morning"}}, "must look like 08:00-19:00"),
        ({"storage": {"colour": "blue"}}, "Unknown setting storage.colour"),
    ],
)
def test_bad_settings_are_named(data, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        settings_from_dict(data, environ={})


def test_bad_environment_value_is_named():
    with pytest.raises(ConfigError, match="MONTHLYDOCS_EMAIL_PORT='x' is not valid"):
        settings_from_dict({}, environ={"MONTHLYDOCS_EMAIL_PORT": "x"})


def test_config_search_order(tmp_path, monkeypatch):
    create_workspace(tmp_path / "a")
    create_workspace(tmp_path / "b")
    monkeypatch.chdir(tmp_path / "a")
    assert find_config(None) == Path("monthlydocs.toml")
    monkeypatch.setenv("MONTHLYDOCS_CONFIG", str(tmp_path / "b" / "monthlydocs.toml"))
    assert find_config(None) == tmp_path / "b" / "monthlydocs.toml"
    assert find_config(tmp_path / "a" / "monthlydocs.toml").parent.name == "a"


def test_no_config_says_how_to_create_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigNotFound, match="monthlydocs init DIR"):
        find_config(None)


def test_invalid_toml_is_one_clear_error(tmp_path):
    path = tmp_path / "monthlydocs.toml"
    path.write_text("[firm\nname = 1")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_settings(path)

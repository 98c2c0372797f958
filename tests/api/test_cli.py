"""`monthlydocs token ...` and `monthlydocs webhook ...`, as a person types them."""

from __future__ import annotations

from monthlydocs import review, tokens, webhooks

from .conftest import NOW


def test_token_create_prints_the_token_once_and_list_never_shows_it(cli, db):
    created = cli("token", "create", "--name", "crm-sync")
    assert created.exit_code == 0, created.output
    token = created.stdout.strip()
    assert token.startswith("mdk_") and "\n" not in token
    assert "cannot be shown again" in created.stderr
    assert tokens.authenticate(db, token, NOW)["name"] == "crm-sync"

    cli("token", "create", "--name", "reporting", "--read-only")
    listed = cli("token", "list")
    assert listed.exit_code == 0
    assert token not in listed.output and token[:8] + "…" in listed.output
    assert "read-only" in listed.output and "read-write" in listed.output


def test_token_revoke_by_name_or_id(cli, db):
    cli("token", "create", "--name", "zap")
    revoked = cli("token", "revoke", "zap")
    assert revoked.exit_code == 0 and "Revoked token #1 'zap'" in revoked.output
    assert "zap" not in cli("token", "list").output
    assert "zap" in cli("token", "list", "--all").output
    failed = cli("token", "revoke", "zap")
    assert failed.exit_code == 1
    assert "No live token 'zap'" in failed.stderr and "token list" in failed.stderr
    cli("token", "create", "--name", "other")
    assert cli("token", "revoke", "2").exit_code == 0
    assert tokens.list_tokens(db) == []


def test_token_create_refuses_a_taken_name(cli):
    cli("token", "create", "--name", "crm")
    again = cli("token", "create", "--name", "crm")
    assert again.exit_code == 1
    assert "A token named 'crm' already exists" in again.stderr


def test_webhook_add_prints_the_secret_once(cli, db):
    added = cli(
        "webhook",
        "add",
        "https://crm.example/in",
        "--events",
        "document.uploaded,checklist.completed",
    )
    assert added.exit_code == 0, added.output
    secret = added.stdout.strip()
    assert secret.startswith("whsec_")
    assert "cannot be shown again" in added.stderr
    assert webhooks.get_webhook(db, 1)["secret"] == secret
    listed = cli("webhook", "list").output
    assert "https://crm.example/in" in listed
    assert "document.uploaded, checklist.completed" in listed
    assert secret not in listed

    plain = cli("webhook", "add", "http://intranet.example/in")
    assert "unencrypted" in plain.stderr


def test_webhook_add_explains_bad_input(cli):
    unknown = cli("webhook", "add", "https://x.example", "--events", "doc.up")
    assert unknown.exit_code == 1
    assert "Unknown event(s) doc.up: choose among client.created" in unknown.stderr
    bad = cli("webhook", "add", "crm.example/in")
    assert bad.exit_code == 1 and "must be an http:// or https:// address" in bad.stderr


def test_webhook_log_and_remove(cli, db, seed, receiver):
    cli("webhook", "add", receiver.url)
    receiver.answers = [500]
    review.approve(db, seed.document_id, "anne", NOW)
    webhooks.deliver_due(db, NOW, timeout=5, clock=lambda: NOW)

    log = cli("webhook", "log", "1")
    assert log.exit_code == 0
    assert "document.approved" in log.output and "pending" in log.output
    assert "HTTP 500: busy, try later" in log.output
    assert "2026-12-01 09:01" in log.output  # the next try
    assert "HTTP 500" in cli("webhook", "log", "--failing").output

    later = NOW.replace(minute=1)
    webhooks.deliver_due(db, later, timeout=5, clock=lambda: later)
    assert "delivered" in cli("webhook", "log").output
    assert "0 deliveries" in cli("webhook", "log", "--failing").output

    missing = cli("webhook", "log", "7")
    assert missing.exit_code == 1 and "No webhook #7" in missing.stderr
    removed = cli("webhook", "remove", "1")
    assert removed.exit_code == 0 and receiver.url in removed.output
    assert "0 webhooks" in cli("webhook", "list").output


def test_slot_edits_from_the_command_line_reach_the_event_feed_as_cli(cli, api):
    assert cli("template", "slot", "monthly", "Payslips", "--optional").exit_code == 0
    assert cli("template", "slot", "monthly", "Payslips", "--required").exit_code == 0
    assert cli("template", "slot", "monthly", "Payslips", "--remove").exit_code == 0
    feed = api.get("/events").get_json()["data"]
    slot_events = [e for e in feed if e["type"].startswith("template.slot")]
    assert [(e["type"], e["actor"], e["data"]["slot"]) for e in slot_events] == [
        ("template.slot_added", "cli", "Payslips"),
        ("template.slot_changed", "cli", "Payslips"),
        ("template.slot_removed", "cli", "Payslips"),
    ]
    assert slot_events[1]["data"]["changes"] == {"optional": False}

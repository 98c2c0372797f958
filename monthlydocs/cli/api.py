"""`monthlydocs token ...` (API tokens) and `monthlydocs webhook ...`."""

from __future__ import annotations

import typer

tokens_app = typer.Typer(
    help="Tokens for the JSON API (/api/v1).", no_args_is_help=True
)
webhooks_app = typer.Typer(
    help="Signed HTTP notifications of events to other systems.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(tokens_app, name="token")
    app.add_typer(webhooks_app, name="webhook")


def _obj(ctx: typer.Context):
    return ctx.find_root().obj


def _day(stamp: str | None) -> str:
    return (stamp or "-")[:16].replace("T", " ")


@tokens_app.command("create")
def token_create(
    ctx: typer.Context,
    name: str = typer.Option(
        ..., "--name", "-n", help="Who or what uses it, like crm-sync."
    ),
    read_only: bool = typer.Option(
        False, "--read-only", help="Allow reading only: every write is refused (403)."
    ),
) -> None:
    """Create an API token and print it once; only its SHA-256 digest is kept.

    Example: monthlydocs token create --name crm-sync --read-only
    """
    from ..tokens import create_token
    from ._output import say, warn

    obj = _obj(ctx)
    token_id, token = create_token(obj.db, name, obj.now(), read_only=read_only)
    say(token)
    warn(
        f"Token #{token_id} {name!r} ({'read-only' if read_only else 'read-write'}). "
        "Copy it now: it cannot be shown again. Send it as "
        "'Authorization: Bearer <token>'."
    )


@tokens_app.command("list")
def token_list(
    ctx: typer.Context,
    all_: bool = typer.Option(False, "--all", help="Include revoked tokens."),
) -> None:
    """List API tokens with their access and when they were last used.

    Example: monthlydocs token list --all
    """
    from ..tokens import list_tokens
    from ._output import table

    rows = list_tokens(_obj(ctx).db, include_revoked=all_)
    table(
        f"{len(rows)} tokens",
        ["Id", "Name", "Starts with", "Access", "Created", "Last used", "Revoked"],
        [
            (
                row["id"],
                row["name"],
                row["prefix"] + "…",
                "read-only" if row["read_only"] else "read-write",
                _day(row["created_at"]),
                _day(row["last_used_at"]),
                _day(row["revoked_at"]) if row["revoked_at"] else "",
            )
            for row in rows
        ],
        justify={"Id": "right"},
    )


@tokens_app.command("revoke")
def token_revoke(
    ctx: typer.Context,
    token: str = typer.Argument(..., help="The token's id or name (see `token list`)."),
) -> None:
    """Revoke an API token: requests carrying it are refused at once (401).

    Example: monthlydocs token revoke crm-sync
    """
    from ..tokens import revoke_token
    from ._output import say

    obj = _obj(ctx)
    row = revoke_token(obj.db, token, obj.now())
    say(f"Revoked token #{row['id']} {row['name']!r}.")


@webhooks_app.command("add")
def webhook_add(
    ctx: typer.Context,
    url: str = typer.Argument(..., help="The receiver's address (https://...)."),
    events: str = typer.Option(
        "all",
        "--events",
        "-e",
        help="Comma-separated events, or all: client.created, checklist.created, "
        "checklist.opened, document.uploaded, document.approved, document.rejected, "
        "checklist.completed, reminder.sent, message.failed.",
    ),
) -> None:
    """Send events to a URL, signed with a secret printed once. Deliveries go out
    with `remind` and the daemon, retried with backoff when the receiver fails.

    Example: monthlydocs webhook add https://crm.example/in -e document.uploaded,checklist.completed
    """
    from ..webhooks import add_webhook
    from ._output import say, warn

    obj = _obj(ctx)
    webhook_id, secret = add_webhook(obj.db, url, events, obj.now())
    say(secret)
    if url.strip().startswith("http://"):
        warn("Warning: http:// sends events unencrypted; prefer https://.")
    warn(
        f"Webhook #{webhook_id} for {url.strip()}. The line above is its signing "
        "secret: give it to the receiver now, it cannot be shown again. Events "
        "recorded from now on are delivered."
    )


@webhooks_app.command("list")
def webhook_list(ctx: typer.Context) -> None:
    """List webhooks with their events and delivery counts.

    Example: monthlydocs webhook list
    """
    from ..webhooks import list_webhooks
    from ._output import table

    rows = list_webhooks(_obj(ctx).db)
    table(
        f"{len(rows)} webhooks",
        ["Id", "URL", "Events", "Delivered", "Waiting", "Gave up", "Last status"],
        [
            (
                row["id"],
                row["url"],
                ", ".join(row["events"]),
                row["delivered"],
                row["pending"],
                row["failed"],
                row["last_status"] or "-",
            )
            for row in rows
        ],
        justify={"Id": "right", "Delivered": "right", "Waiting": "right"},
    )


@webhooks_app.command("remove")
def webhook_remove(
    ctx: typer.Context,
    webhook: int = typer.Argument(..., help="The webhook's id (see `webhook list`)."),
) -> None:
    """Stop sending to a webhook; its queue and delivery log go with it.

    Example: monthlydocs webhook remove 2
    """
    from ..webhooks import remove_webhook
    from ._output import say

    obj = _obj(ctx)
    row = remove_webhook(obj.db, webhook, obj.now())
    say(f"Removed webhook #{row['id']} {row['url']}.")


@webhooks_app.command("log")
def webhook_log(
    ctx: typer.Context,
    webhook: int = typer.Argument(None, help="Only this webhook (default: all)."),
    limit: int = typer.Option(50, "--limit", "-n", min=1, help="Rows to show."),
    failing: bool = typer.Option(
        False, "--failing", help="Only deliveries waiting for a retry or given up."
    ),
) -> None:
    """Show the latest deliveries, newest first: status code, attempts, last error
    and the next attempt.

    Example: monthlydocs webhook log 2 --failing
    """
    from ..webhooks import delivery_log
    from ._output import table

    db = _obj(ctx).db
    rows = delivery_log(db, webhook, limit=limit, failing=failing)
    table(
        f"{len(rows)} deliveries",
        [
            "Id",
            "Webhook",
            "Event",
            "Type",
            "State",
            "Tries",
            "Status",
            "Next try",
            "Last error",
        ],
        [
            (
                row["id"],
                row["webhook_id"],
                row["event_id"],
                row["event"],
                row["state"],
                row["attempts"],
                row["status_code"] or "-",
                _day(row["next_attempt_at"]) if row["state"] == "pending" else "",
                (row["last_error"] or "")[:80],
            )
            for row in rows
        ],
        justify={"Id": "right", "Tries": "right"},
    )

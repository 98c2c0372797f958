"""`monthlydocs serve` and `monthlydocs invite`."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("invite")(invite)


def _obj(ctx: typer.Context):
    return ctx.find_root().obj


def serve(
    ctx: typer.Context,
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to listen on (0.0.0.0: every interface)."
    ),
    port: int = typer.Option(8000, "--port", "-p", help="Port to listen on."),
    threads: int = typer.Option(
        8, "--threads", help="Requests handled at the same time."
    ),
) -> None:
    """Run the client portal under the waitress WSGI server until Ctrl+C.

    Put a reverse proxy with HTTPS in front of it for clients on the Internet, and set
    portal.base_url to the address they use.

    Example: monthlydocs serve --host 0.0.0.0 --port 8000
    """
    obj = _obj(ctx)
    run_portal(obj.settings, host, port, threads, verbose=obj.verbose)


def run_portal(settings, host: str, port: int, threads: int = 8, verbose: bool = False):
    """Serve the portal of ``settings`` until Ctrl+C (also used by `demo --serve`)."""
    import logging

    from waitress import serve as run

    from ..storage import max_bytes
    from ..web import MAX_FILES_PER_REQUEST, create_app
    from ..web.security import install_log_masking
    from ._output import say

    handler = logging.StreamHandler()
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    install_log_masking(handler)
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, handlers=[handler], force=True
    )
    app = create_app(settings, send_in_background=True)
    say(
        f"Portal of {settings.firm.name} listening on http://{host}:{port}/ "
        f"(clients use {settings.portal.base_url}); staff dashboard at "
        f"http://{host}:{port}/dashboard/. Ctrl+C stops it."
    )
    run(
        app,
        host=host,
        port=port,
        threads=threads,
        ident="monthlydocs",
        # Room for a full form of files; each file is still held to max_upload_mb.
        max_request_body_size=max_bytes(settings.storage.max_upload_mb)
        * MAX_FILES_PER_REQUEST
        + 1024 * 1024,
    )


def invite(
    ctx: typer.Context,
    rotate: bool = typer.Option(
        False, "--rotate", help="Replace the link: the old one stops working."
    ),
    whatsapp: bool = typer.Option(
        False, "--whatsapp", help="Print only the WhatsApp share link."
    ),
) -> None:
    """Print the firm's invite link, where new clients register themselves, and its
    WhatsApp share form on the next line.

    The link comes first, alone on its line, for scripts. New clients appear as pending
    in `client list` until `client approve C`.

    Example: monthlydocs invite --whatsapp
    """
    from .. import links, portal
    from ..i18n import gettext
    from ._output import warn

    obj = _obj(ctx)
    settings = obj.settings
    secret = settings.firm.secret_key
    token = (
        portal.rotate_invite(obj.db, secret, obj.now())
        if rotate
        else portal.invite_token(obj.db, secret)
    )
    url = portal.invite_link(settings.portal.base_url, token)
    if not settings.portal.self_registration:
        warn(
            "Note: portal.self_registration is false, so this link shows the "
            "'link does not work' page until you turn it on."
        )
    text = gettext(
        settings.firm.default_language,
        "Hello, you can register with %(firm)s here to send your documents: %(link)s",
        firm=settings.firm.name,
        link=url,
    )
    share = links.whatsapp_url(None, text)
    if whatsapp:
        typer.echo(share)
        return
    typer.echo(url)
    typer.echo(f"WhatsApp: {share}")

"""Clients: the list, adding and editing, archiving, approving self-registered clients,
their templates, and importing a CSV file with the CLI's importer."""

from __future__ import annotations

import secrets
import shutil
import time
from pathlib import Path
from typing import Any

from flask import redirect, render_template, request, session, url_for
from flask_babel import gettext as _

from ... import clients as core
from ... import overview, portal
from ...config import LANGUAGES
from ...errors import (
    DuplicateClient,
    ImportFileError,
    InvalidEmail,
    InvalidLanguage,
    InvalidPhone,
    MonthlydocsError,
)
from ...importing import (
    FIELDS,
    describe_delimiter,
    describe_encoding,
    guess_field,
    read_table,
)
from ...importing import import_clients as run_import
from ...storage import safe_name
from ...templates import list_templates
from .. import get_db, get_settings, now
from ..portal import LANGUAGE_NAMES
from . import actor, bp, done, today

FORM_FIELDS = ("name", "email", "phone", "language", "notes")
IMPORTS_DIR = ".imports"
IMPORT_TTL_S = 24 * 3600


def _int(name: str, default: int = 1) -> int:
    value = request.args.get(name, "")
    return int(value) if value.isdigit() else default


@bp.get("/clients")
def clients():
    status = request.args.get("status", "active")
    if status not in overview.CLIENT_STATUSES:
        status = "active"
    search = request.args.get("q", "").strip()[:100]
    listing = overview.clients_page(get_db(), status=status, search=search,
                                    page=_int("page"))
    return render_template(
        "dashboard/clients.html", listing=listing, status=status, search=search,
        page_url=lambda number: url_for("dashboard.clients", status=status,
                                        q=search or None, page=number),
    )


def _form_from_request() -> dict[str, str]:
    return {key: request.form.get(key, "").strip() for key in FORM_FIELDS}


def _field_errors(exc: MonthlydocsError) -> dict[str, str]:
    from . import error_message

    if isinstance(exc, InvalidEmail | DuplicateClient):
        return {"email": error_message(exc)}
    if isinstance(exc, InvalidPhone):
        return {"phone": error_message(exc)}
    if isinstance(exc, InvalidLanguage):
        return {"language": error_message(exc)}
    return {"name": _("Write the client's name or company name.")}


def _render_form(form: dict, errors: dict, client: dict | None = None, status=200):
    context: dict[str, Any] = {"form": form, "errors": errors, "client": client,
                               "language_names": LANGUAGE_NAMES,
                               "languages_codes": LANGUAGES}
    if client is not None:
        db = get_db()
        context.update(
            templates=list_templates(db),
            assigned=overview.template_ids_of(db, client["id"]),
            checklists=overview.client_checklists(db, client["id"], today()),
        )
    return render_template("dashboard/client.html", **context), status


@bp.route("/clients/new", methods=["GET", "POST"])
def new_client():
    if request.method == "GET":
        return _render_form(dict.fromkeys(FORM_FIELDS, ""), {})
    form = _form_from_request()
    try:
        client_id = core.add_client(
            get_db(),
            core.ClientInput(form["name"], form["email"], form["phone"] or None,
                             form["language"] or None, form["notes"] or None),
            now(), region=get_settings().firm.country, actor=actor(),
        )
    except MonthlydocsError as exc:
        return _render_form(form, _field_errors(exc), status=400)
    return done(_("Client added."), url_for("dashboard.client", client_id=client_id))


@bp.route("/clients/<int:client_id>", methods=["GET", "POST"])
def client(client_id: int):
    db = get_db()
    row = core.get_client(db, client_id)
    if request.method == "GET":
        form = {key: row[key] or "" for key in FORM_FIELDS}
        return _render_form(form, {}, row)
    form = _form_from_request()
    try:
        changed = core.update_client(
            db, client_id, form, now(), region=get_settings().firm.country,
            actor=actor(),
        )
    except MonthlydocsError as exc:
        return _render_form(form, _field_errors(exc), row, status=400)
    message = _("Changes saved.") if changed else _("Nothing to change.")
    return done(message, url_for("dashboard.client", client_id=client_id))


@bp.post("/clients/<int:client_id>/templates")
def client_templates(client_id: int):
    db = get_db()
    core.get_client(db, client_id)
    wanted = {int(v) for v in request.form.getlist("template") if v.isdigit()}
    known = {t["id"] for t in list_templates(db)}
    current = overview.template_ids_of(db, client_id) & known
    for template_id in sorted((wanted & known) - current):
        core.assign(db, [client_id], template_id, now(), actor())
    for template_id in sorted(current - wanted):
        core.unassign(db, [client_id], template_id, now(), actor())
    return done(_("Templates saved."),
                url_for("dashboard.client", client_id=client_id, _anchor="templates"))


@bp.post("/clients/<int:client_id>/archive")
def archive_client(client_id: int):
    row = core.get_client(get_db(), client_id)
    core.archive_client(get_db(), client_id, now(), actor())
    return done(_("%(name)s archived: no more checklists or reminders.",
                  name=row["name"]), url_for("dashboard.clients"))


@bp.post("/clients/<int:client_id>/approve")
def approve_client(client_id: int):
    row = core.get_client(get_db(), client_id)
    portal.approve_client(get_db(), client_id, now(), actor())
    return done(_("%(name)s approved: assign them a template to send them a link.",
                  name=row["name"]), url_for("dashboard.client", client_id=client_id,
                                             _anchor="templates"))


# -- import ---------------------------------------------------------------------------


def _imports_dir() -> Path:
    return get_settings().files_dir / IMPORTS_DIR


def _stage(upload) -> Path:
    """Keep an uploaded CSV until it is imported (or abandoned for a day)."""
    folder = _imports_dir()
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        if old.stat().st_mtime < time.time() - IMPORT_TTL_S:
            shutil.rmtree(old, ignore_errors=True)
    token = secrets.token_hex(16)
    target = folder / token / safe_name(upload.filename, "clients.csv")
    target.parent.mkdir()
    upload.stream.seek(0)
    with target.open("wb") as out:
        shutil.copyfileobj(upload.stream, out)
    session["import"] = {"token": token, "name": target.name, "overrides": {}}
    return target


def _staged() -> Path | None:
    held = session.get("import")
    if not isinstance(held, dict):
        return None
    token, name = str(held.get("token", "")), str(held.get("name", ""))
    if len(token) != 32 or not all(c in "0123456789abcdef" for c in token):
        return None
    path = _imports_dir() / token / safe_name(name)
    return path if path.is_file() else None


def _drop_staged() -> None:
    path = _staged()
    session.pop("import", None)
    if path is not None:
        shutil.rmtree(path.parent, ignore_errors=True)


@bp.route("/clients/import", methods=["GET", "POST"])
def import_clients():
    db, settings = get_db(), get_settings()
    templates = list_templates(db)
    if request.method == "GET":
        return render_template("dashboard/import.html", result=None,
                               templates=templates)
    action = request.form.get("action", "check")
    upload = request.files.get("file")
    if upload is not None and upload.filename:
        path = _stage(upload)
    else:
        path = _staged()
        if path is None:
            return render_template(
                "dashboard/import.html", result=None, templates=templates,
                error=_("Choose a CSV file first."),
            ), 400
    overrides = dict(session["import"].get("overrides") or {})
    for column, shown, chosen in zip(
        request.form.getlist("column"), request.form.getlist("shown"),
        request.form.getlist("field"), strict=False,
    ):
        if chosen in FIELDS and chosen != shown:
            overrides[column] = chosen
    session["import"] = {**session["import"], "overrides": overrides}
    template_id = request.form.get("template", "")
    template_id = int(template_id) if template_id.isdigit() else None
    commit = action == "import"
    try:
        result = run_import(
            db, path, now(), region=settings.firm.country, overrides=overrides,
            dry_run=not commit, template_id=template_id if commit else None,
            actor=actor(),
        )
    except ImportFileError as exc:
        from . import error_message

        # A file that reads but lacks an email or name column: let them say which.
        return render_template(
            "dashboard/import.html", result=None, templates=templates,
            error=error_message(exc), columns=_guessed_columns(path, overrides),
            fields=FIELDS, template_id=template_id,
        ), 400
    if commit:
        _drop_staged()
    columns = [(name, field) for name, field in result.mapping] + [
        (name, "ignore") for name in result.ignored
    ]
    return render_template(
        "dashboard/import.html", result=result, columns=columns, fields=FIELDS,
        counts={o.value: n for o, n in result.counts.items()},
        encoding=describe_encoding(result.encoding),
        delimiter=_delimiter_name(result.delimiter), templates=templates,
        template_id=template_id, committed=commit,
    )


def _guessed_columns(path: Path, overrides: dict[str, str]):
    """The header's columns with the importer's guesses, or None if unreadable."""
    try:
        table = read_table(path, known_columns=overrides.keys())
    except ImportFileError:
        return None
    return [(text, overrides.get(text) or guess_field(text) or "ignore")
            for text in table.header if text]


def _delimiter_name(delimiter: str) -> str:
    names = {"\t": _("tab"), ";": _("semicolon"), ",": _("comma")}
    return names.get(delimiter) or describe_delimiter(delimiter)


@bp.post("/clients/import/cancel")
def cancel_import():
    _drop_staged()
    return redirect(url_for("dashboard.import_clients"), 303)

"""Document templates: create, edit their slots (order, descriptions, optional, several
files), and choose the clients they apply to."""

from __future__ import annotations

from flask import render_template, request, url_for
from flask_babel import gettext as _

from ... import overview
from ... import templates as core
from ...errors import MonthlydocsError
from ...periods import CADENCES
from .. import get_db, now
from . import actor, bp, done, error_message

TEMPLATE_FIELDS = ("slug", "name", "description", "cadence", "due_day")


def _url(slug: str, anchor: str | None = None) -> str:
    return url_for("dashboard.template", slug=slug, _anchor=anchor)


@bp.get("/templates")
def templates():
    return render_template("dashboard/templates.html",
                           templates=core.list_templates(get_db()))


def _read_form() -> dict[str, str]:
    return {key: request.form.get(key, "").strip() for key in TEMPLATE_FIELDS}


def _due_day(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def _render(template, form, error=None, status=200):
    db = get_db()
    context = {"template": template, "form": form, "error": error,
               "cadences": CADENCES}
    if template is not None:
        context.update(
            slots=core.slots(db, template["id"]),
            # TODO: a page of checkboxes suits a few hundred clients; past that, a
            # search with paging (overview.clients_page) would serve better.
            clients=overview.active_clients(db),
            assigned=overview.client_ids_of(db, template["id"]),
        )
    return render_template("dashboard/template.html", **context), status


@bp.route("/templates/new", methods=["GET", "POST"])
def new_template():
    if request.method == "GET":
        form = {"slug": "", "name": "", "description": "", "cadence": "monthly",
                "due_day": "10"}
        return _render(None, form)
    form = _read_form()
    try:
        core.check_slug(form["slug"])
        if core.list_templates(get_db()) and form["slug"] in {
            t["slug"] for t in core.list_templates(get_db())
        }:
            raise core.TemplateError(f"A template {form['slug']!r} already exists")
        core.save_template(
            get_db(), form["slug"], now(), name=form["name"] or None,
            cadence=form["cadence"], due_day=_due_day(form["due_day"]),
            description=form["description"], actor=actor(),
        )
    except MonthlydocsError as exc:
        return _render(None, form, error_message(exc), 400)
    slug = form["slug"].strip().lower()
    return done(_("Template created: now add the documents it asks for."),
                _url(slug, "slots"))


@bp.route("/templates/<slug>", methods=["GET", "POST"])
def template(slug: str):
    db = get_db()
    row = core.get_template(db, slug)
    if request.method == "GET":
        form = {key: str(row[key] if row[key] is not None else "")
                for key in TEMPLATE_FIELDS}
        return _render(row, form)
    form = {**_read_form(), "slug": row["slug"]}
    try:
        core.save_template(
            db, row["slug"], now(), name=form["name"] or row["name"],
            cadence=form["cadence"] or None, due_day=_due_day(form["due_day"]),
            description=form["description"], actor=actor(),
        )
    except MonthlydocsError as exc:
        return _render(row, form, error_message(exc), 400)
    return done(_("Template saved. Checklists generated from now on use it; "
                  "existing ones keep their documents."), _url(row["slug"]))


@bp.post("/templates/<slug>/slots")
def save_slots(slug: str):
    """Descriptions and options of every slot at once (one form for the table); the
    audit trail records each slot that changed."""
    # TODO: renaming a slot needs templates.save_slot to key slots by id; today a slot
    # is renamed by removing it and adding it again.
    db, moment = get_db(), now()
    row = core.get_template(db, slug)
    for slot in core.slots(db, row["id"]):
        key = f"slot-{slot['id']}"
        if f"{key}-present" not in request.form:
            continue  # a slot added meanwhile: not part of this form
        core.save_slot(
            db, row["slug"], slot["name"],
            description=request.form.get(f"{key}-description", "").strip(),
            optional=f"{key}-optional" in request.form,
            multiple=f"{key}-multiple" in request.form,
            now=moment, actor=actor(),
        )
    return done(_("Documents saved."), _url(row["slug"], "slots"))


@bp.post("/templates/<slug>/slots/add")
def add_slot(slug: str):
    db = get_db()
    row = core.get_template(db, slug)
    name = " ".join(request.form.get("name", "").split())
    if not name:
        return done(_("Give the document a name."), _url(row["slug"], "slots"),
                    "error")
    if any(s["name"] == name for s in core.slots(db, row["id"])):
        return done(_("This template already asks for a document of that name."),
                    _url(row["slug"], "slots"), "error")
    core.save_slot(
        db, row["slug"], name,
        description=request.form.get("description", "").strip(),
        optional="optional" in request.form, multiple="multiple" in request.form,
        now=now(), actor=actor(),
    )
    return done(_("Document added."), _url(row["slug"], "slots"))


@bp.post("/templates/<slug>/slots/remove")
def remove_slot(slug: str):
    row = core.get_template(get_db(), slug)
    core.remove_slot(get_db(), row["slug"], request.form.get("name", ""), now(),
                     actor=actor())
    return done(_("Document removed from the template."), _url(row["slug"], "slots"))


@bp.post("/templates/<slug>/slots/move")
def move_slot(slug: str):
    """Move a slot one place up or down."""
    db = get_db()
    row = core.get_template(db, slug)
    offset = -1 if request.form.get("direction") == "up" else 1
    core.move_slot(db, row["slug"], request.form.get("name", ""), offset, now(),
                   actor=actor())
    return done(_("Order saved."), _url(row["slug"], "slots"))


@bp.post("/templates/<slug>/clients")
def template_clients(slug: str):
    db = get_db()
    row = core.get_template(db, slug)
    listed = {int(v) for v in request.form.getlist("listed") if v.isdigit()}
    wanted = {int(v) for v in request.form.getlist("client") if v.isdigit()}
    added, removed = overview.set_assignments(
        db, now(), template_id=row["id"], wanted=wanted, among=listed, actor=actor(),
    )
    return done(_("Clients saved: %(added)s added, %(removed)s removed.",
                  added=added, removed=removed), _url(row["slug"], "clients"))

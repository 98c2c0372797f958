"""Bulk generation: choose a template, clients, a period and a due date; see what will
be created and who will be emailed (a dry run); confirm; the links are sent."""

from __future__ import annotations

from datetime import date

from flask import render_template, request, url_for
from flask_babel import gettext as _

from ... import checklists, overview
from ...errors import MonthlydocsError
from ...periods import current_period, due_date
from ...templates import get_template, list_templates
from .. import get_db, get_settings, now
from . import actor, bp, done, error_message, today


def _due(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


@bp.route("/generate", methods=["GET", "POST"])
def generate():
    db, settings = get_db(), get_settings()
    templates = list_templates(db)
    slug = request.values.get("template", "")
    template = get_template(db, slug) if slug else None
    context = {"templates": templates, "template": template, "result": None,
               "error": None}
    if template is None:
        return render_template("dashboard/generate.html", **context)

    candidates = overview.active_clients(db, template["id"])
    if request.method == "GET":
        period = current_period(template["cadence"], today())
        due_on = due_date(template["due_day"], today())
        chosen = {c["id"] for c in candidates}
    else:
        period = request.form.get("period", "").strip()
        due_on = _due(request.form.get("due", ""))
        chosen = {int(v) for v in request.form.getlist("client") if v.isdigit()}
    context.update(candidates=candidates, period=period, due_on=due_on,
                   chosen=chosen)
    if request.method == "GET":
        return render_template("dashboard/generate.html", **context)

    confirm = request.form.get("action") == "confirm"
    if not chosen:
        context["error"] = _("Choose at least one client.")
        return render_template("dashboard/generate.html", **context), 400
    if request.form.get("due") and due_on is None:
        context["error"] = _("The due date does not look right.")
        return render_template("dashboard/generate.html", **context), 400
    try:
        result = checklists.generate(
            db, [checklists.Request(template, period or None, due_on)], now(),
            today(), client_ids=sorted(chosen), dry_run=not confirm,
            default_language=settings.firm.default_language, actor=actor(),
        )
    except MonthlydocsError as exc:
        context["error"] = error_message(exc)
        return render_template("dashboard/generate.html", **context), 400
    if confirm:
        # The links are queued; the app's sending thread emails them once this answer
        # is out (web/background.py): a hundred clients never hold the page up.
        outcome = result.outcomes[0]
        message = _(
            "%(created)s checklists created (%(already)s already there); "
            "%(queued)s emails on their way.", created=outcome.created,
            already=outcome.already, queued=result.messages_queued,
        )
        target = url_for("dashboard.overview", period=outcome.period,
                         template=template["id"])
        return done(message, target)
    names = {c["id"]: c["name"] for c in candidates}
    context.update(
        result=result,
        outcome=result.outcomes[0],
        new_clients=sorted((names.get(cid, f"#{cid}") for cid in
                            result.created_by_client), key=str.casefold),
    )
    return render_template("dashboard/generate.html", **context)

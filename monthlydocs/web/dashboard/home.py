"""The overview: counts by state, the table of checklists, and the live feed."""

from __future__ import annotations

from typing import Any

from flask import jsonify, render_template, request, url_for
from flask_babel import gettext as _

from ... import overview as core
from ...events import Event
from .. import get_db, get_settings
from . import bp, today, wants_json

# Events that get a notice on the staff's screen (the table refreshes on any event).
NOTIFIED = {
    str(Event.DOCUMENT_UPLOADED),
    str(Event.CHECKLIST_COMPLETED),
    str(Event.ITEM_NOT_APPLICABLE),
}
ALL_PERIODS = "all"


def _int(name: str, default: int | None = None) -> int | None:
    value = request.args.get(name, "")
    return int(value) if value.isdigit() else default


def read_query(db) -> core.Query:
    """The overview's filters from the URL; anything unknown gets the default."""
    args = request.args
    period = args.get("period") or core.default_period(db, today())
    state = args.get("state") if args.get("state") in core.FILTERS else None
    sort = args.get("sort", "state")
    return core.Query(
        period=None if period == ALL_PERIODS else period,
        template_id=_int("template"),
        state=state,
        search=args.get("q", "").strip()[:100],
        sort=sort if sort in core.SORTS else "state",
        descending=args.get("dir") == "desc",
        page=_int("page", 1) or 1,
    )


@bp.get("/")
def overview():
    db, settings = get_db(), get_settings()
    query = read_query(db)
    view = core.overview(db, settings, today(), query)
    links = Links(query)
    context = {"view": view, "query": query, "links": links}
    if wants_json():
        return jsonify({
            "ok": True,
            "counts": render_template("dashboard/_counts.html", **context),
            "table": render_template("dashboard/_table.html", **context),
        })
    return render_template(
        "dashboard/overview.html",
        periods=core.periods(db),
        templates=core.template_choices(db),
        **context,
    )


class Links:
    """URLs of this overview with one thing changed: a state, a sort, a page."""

    def __init__(self, query: core.Query):
        self.query = query
        self.args = {
            "period": query.period or ALL_PERIODS,
            "template": query.template_id,
            "state": query.state,
            "q": query.search or None,
            "sort": query.sort if query.sort != "state" else None,
            "dir": "desc" if query.descending else None,
        }

    def with_(self, **changes: Any) -> str:
        args = {**self.args, **changes}
        return url_for("dashboard.overview",
                       **{k: v for k, v in args.items() if v is not None})

    def page(self, number: int) -> str:
        return self.with_(page=number if number > 1 else None)

    def state(self, state: str | None) -> str:
        return self.with_(state=state)

    def sort(self, column: str) -> tuple[str, str | None]:
        """(URL, aria-sort) of a column header: a second click reverses the order."""
        query = self.query
        if query.sort == column:
            reverse = None if query.descending else "desc"
            current = "descending" if query.descending else "ascending"
            return self.with_(sort=column, dir=reverse), current
        return self.with_(sort=column, dir=None), None

    @property
    def here(self) -> str:
        return self.with_(page=self.query.page if self.query.page > 1 else None)


@bp.get("/live")
def live():
    """New events after ``after`` (an event id): the script refreshes what it shows and
    gives a notice for what clients did."""
    db = get_db()
    after = _int("after", 0) or 0
    entries = core.feed(db, after)
    latest = entries[-1]["id"] if entries else max(after, core.latest_event_id(db))
    notices = [_notice(entry) for entry in entries if entry["action"] in NOTIFIED
               and entry["actor"] in ("client", "portal", "system")]
    return jsonify({
        "ok": True,
        "latest": latest,
        "changed": bool(entries),
        "notices": [notice for notice in notices if notice],
    })


def _notice(entry: dict[str, Any]) -> dict[str, str] | None:
    client = entry["client"] or _("a client")
    if entry["action"] == str(Event.DOCUMENT_UPLOADED):
        text = _("New upload from %(client)s: %(file)s", client=client,
                 file=entry["file"] or _("a file since removed"))
    elif entry["action"] == str(Event.CHECKLIST_COMPLETED):
        text = _("%(client)s has sent everything.", client=client)
    else:
        text = _("%(client)s has nothing to send for one document.", client=client)
    url = (url_for("dashboard.checklist", checklist_id=entry["checklist_id"])
           if entry["checklist_id"] else "")
    return {"id": str(entry["id"]), "text": text, "url": url}

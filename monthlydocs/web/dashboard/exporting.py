"""The export: the same selection as `monthlydocs export`, streamed as a ZIP.

The archive is stored (not compressed: scans and PDFs barely shrink) and sized, so the
browser shows a real progress bar and the server reads each file as it sends it:
memory stays flat whatever the size, and ZIP64 is used past 4 GB.
"""

from __future__ import annotations

from datetime import UTC

from flask import Response, render_template, request
from flask_babel import gettext as _
from werkzeug.http import http_date

from ... import export as core
from ... import overview
from ...clients import find_client
from ...errors import MonthlydocsError
from ...templates import get_template, list_templates
from .. import get_db, get_settings
from . import bp, error_message, page_error

FILTERS = ("period", "template", "client", "approved")


def _selection(db) -> core.Selection:
    """The CLI's filters, from the query string: period, template slug, client
    (id, email or part of the name), approved only."""
    args = request.args
    template = args.get("template", "").strip()
    client = args.get("client", "").strip()
    return core.Selection(
        period=args.get("period", "").strip() or None,
        template_id=get_template(db, template)["id"] if template else None,
        client_id=find_client(db, client)["id"] if client else None,
        approved_only=args.get("approved") == "1",
    )


@bp.get("/export")
def export():
    db = get_db()
    args = {key: request.args.get(key, "") for key in FILTERS}
    context = {"args": args, "periods": overview.periods(db),
               "templates": list_templates(db), "items": None, "error": None}
    if request.args.get("show"):
        try:
            items = core.entries(core.select(db, _selection(db)),
                                 get_settings().files_dir)
        except MonthlydocsError as exc:
            context["error"] = error_message(exc)
            return render_template("dashboard/export.html", **context), 400
        context.update(items=items, total=sum(e.row["size"] for e in items),
                       download={k: v for k, v in args.items() if v})
    return render_template("dashboard/export.html", **context)


@bp.get("/export.zip")
def export_zip():
    db = get_db()
    items = core.entries(core.select(db, _selection(db)), get_settings().files_dir)
    if not items:
        return page_error(_("No documents match: nothing to export."), 404)
    missing = list(core.missing_files(items))
    if missing:
        return page_error(_("%(count)s stored files are missing on disk, so nothing "
                            "was exported. First one: %(name)s",
                            count=len(missing), name=missing[0].arcname), 409)
    stream = core.zip_stream(items)
    size = len(stream)
    modified = stream.last_modified.astimezone(UTC)  # naive local time -> UTC
    name = "monthlydocs-" + "-".join(
        part for part in (request.args.get("period", ""), "export") if part
    ) + ".zip"
    return Response(
        stream,
        mimetype="application/zip",
        headers={
            "Content-Length": str(size),
            "Content-Disposition": f'attachment; filename="{_ascii(name)}"',
            "Last-Modified": http_date(modified),
        },
        direct_passthrough=True,
    )


def _ascii(text: str) -> str:
    return "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_"
                   for c in text)

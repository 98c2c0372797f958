"""One checklist: its items and files, the review, the link, reminders, the timeline."""

from __future__ import annotations

from flask import abort, render_template, request, send_file, url_for
from flask_babel import gettext as _

from ... import checklists, links, portal, review
from ...overview import checklist_of_item, checklist_state, remind_now, timeline
from ...storage import safe_name
from .. import get_db, get_settings, now
from ..security import CONTENT_SECURITY_POLICY
from . import FRAME_CSP_EXTRA, PREVIEWABLE, actor, bp, done, today

# The policy of a file shown in the browser: nothing to run, framed by the app only.
INLINE_FILE_CSP = (
    "default-src 'none'; img-src 'self'; object-src 'self';"
    " style-src 'unsafe-inline'; frame-ancestors 'self'"
)


def _page_url(checklist_id: int, anchor: str | None = None) -> str:
    return url_for("dashboard.checklist", checklist_id=checklist_id, _anchor=anchor)


@bp.get("/checklists/<int:checklist_id>")
def checklist(checklist_id: int):
    db, settings = get_db(), get_settings()
    row = checklists.get_checklist(db, checklist_id)
    view = portal.page(db, row)
    link = links.link_for(settings.portal.base_url, row["token"])
    state, to_call = checklist_state(db, checklist_id, today())
    response = render_template(
        "dashboard/checklist.html",
        view=view,
        checklist=row,
        state=state,
        to_call=to_call,
        link=link,
        whatsapp=links.whatsapp_share(view.client, link,
                                      settings.firm.default_language),
        moments=timeline(db, checklist_id),
        previewable=PREVIEWABLE,
        can_remind=not row["completed_at"] and not row["archived_at"]
        and view.client["status"] == "active",
    )
    return response, 200, {
        "Content-Security-Policy": CONTENT_SECURITY_POLICY + FRAME_CSP_EXTRA,
    }


@bp.get("/documents/<int:document_id>/file")
def document_file(document_id: int):
    """The stored file: shown in the page for PDFs and images, downloaded otherwise.

    The content type is the one detected from the content at upload. Nothing that a
    browser could run (HTML, SVG, XML...) is ever served inline: those go out as
    ``application/octet-stream`` attachments, and nosniff forbids second guesses.
    """
    settings = get_settings()
    document = review.get_document(get_db(), document_id)
    path = settings.files_dir / document["stored_path"]
    if not path.is_file():
        abort(404)
    kind = document["content_type"]
    inline = kind in PREVIEWABLE and request.args.get("download") != "1"
    mimetype = kind if kind in PREVIEWABLE or kind in _DOWNLOAD_TYPES else (
        "application/octet-stream")
    response = send_file(
        path, mimetype=mimetype, as_attachment=not inline,
        download_name=safe_name(document["original_filename"]),
        conditional=True, etag=document["sha256"], max_age=0,
    )
    if inline:
        # Only this app's dashboard may frame it (the PDF preview).
        response.headers["Content-Security-Policy"] = INLINE_FILE_CSP
        response.headers["X-Frame-Options"] = "SAMEORIGIN"
    response.headers["Cache-Control"] = "private, no-store"
    return response


# Types sent with their own name when downloaded (never shown inline).
_DOWNLOAD_TYPES = {
    "image/heic", "image/heif", "image/tiff", "text/csv", "text/plain",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.ms-excel",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/msword", "application/vnd.oasis.opendocument.spreadsheet",
    "application/vnd.oasis.opendocument.text", "application/zip",
}


@bp.post("/documents/<int:document_id>/approve")
def approve(document_id: int):
    document = review.approve(get_db(), document_id, actor(), now())
    return done(_("“%(name)s” approved.", name=document["original_filename"]),
                _page_url(document["checklist_id"], f"item-{document['item_id']}"))


@bp.post("/documents/<int:document_id>/reject")
def reject(document_id: int):
    db, settings = get_db(), get_settings()
    note = request.form.get("note", "")
    if not note.strip():
        document = review.get_document(db, document_id)
        return done(_("Write a note telling the client what to send instead."),
                    _page_url(document["checklist_id"], f"item-{document['item_id']}"),
                    "error")
    document = review.reject(db, settings, document_id, note, actor(), now())
    # Queued: the app's sending thread emails it once this answer is out (see
    # web/background.py), and the timeline shows how that went.
    return done(_("“%(name)s” rejected; your note is on its way to the client by "
                  "email.", name=document["original_filename"]),
                _page_url(document["checklist_id"], f"item-{document['item_id']}"))


@bp.post("/items/<int:item_id>/not-applicable")
def not_applicable(item_id: int):
    db = get_db()
    checklist_id = checklist_of_item(db, item_id)
    reason = " ".join(request.form.get("reason", "").split())[:500] or None
    review.mark_not_applicable(db, item_id, actor(), now(), reason)
    return done(_("Marked as not applicable."),
                _page_url(checklist_id, f"item-{item_id}"))


@bp.post("/checklists/<int:checklist_id>/remind")
def remind(checklist_id: int):
    db, settings = get_db(), get_settings()
    if not remind_now(db, settings, now(), checklist_id, actor()):
        return done(_("Every reminder of the sequence has been sent already: call the "
                      "client."), _page_url(checklist_id), "error")
    # Sent by the app's sending thread once this answer is out; see the timeline.
    return done(_("Reminder on its way."), _page_url(checklist_id))


@bp.post("/checklists/<int:checklist_id>/rotate")
def rotate(checklist_id: int):
    checklists.get_checklist(get_db(), checklist_id)  # 404 for an unknown id
    links.rotate(get_db(), checklist_id, now(), actor=actor())
    return done(_("New link made: the old one no longer works. Send the new one to "
                  "the client."), _page_url(checklist_id, "link"))

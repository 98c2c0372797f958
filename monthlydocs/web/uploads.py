"""Uploads with flat memory: each file part is written straight into the file store.

Werkzeug normally spools file parts to an anonymous temporary file, which the app would
then copy again. Here the parser writes into ``storage.Incoming``, which hashes, counts
and enforces the per-file limit as bytes arrive; accepted files are then renamed into
place without another copy.

On the portal's upload form a file over the limit does not stop the parsing: its bytes
are dropped, the other files of the form still arrive, and the view tells the client
which file was too big. Elsewhere such a file ends the request with 413.
"""

from __future__ import annotations

from flask import Request, current_app

from .. import storage

# Views that report on each file of a form themselves.
KEEP_READING_ENDPOINTS = frozenset({"portal.upload"})


class PortalRequest(Request):
    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ):
        settings = current_app.extensions["monthlydocs.settings"]
        incoming = storage.Incoming(
            settings.files_dir,
            storage.max_bytes(settings.storage.max_upload_mb),
            filename,
            keep_reading=self.endpoint in KEEP_READING_ENDPOINTS,
        )
        self.__dict__.setdefault("_incoming", []).append(incoming)
        return incoming

    def close(self) -> None:
        # Also drop the parts of a body whose parsing stopped half-way (a file over the
        # limit outside the upload form), which never reached request.files.
        try:
            super().close()
        finally:
            for incoming in self.__dict__.pop("_incoming", []):
                incoming.discard()

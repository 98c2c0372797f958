"""Sending from the web app right away: one thread per app, woken after each write.

A request that queues something (an upload recorded as an event for webhooks, a rejection
email, a reminder asked for through the API) must not wait for SMTP or a webhook
receiver. It only wakes this thread, which sends what is due with its own database
connection, exactly as `remind` would: messages and deliveries are claimed in the
database, so the thread, `remind` and the daemon never send the same thing twice. What
the thread does not manage (the process stops, a server is down) the next `remind` does.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

log = logging.getLogger("monthlydocs.web")


class Sender:
    def __init__(self, settings, clock: Callable[[], datetime]):
        self.settings = settings
        self.clock = clock
        self.wake = threading.Event()
        self.idle = threading.Event()
        self.idle.set()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def kick(self) -> None:
        """Ask for a sending round soon; cheap, never blocks the request."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="monthlydocs-sender", daemon=True
                )
                self._thread.start()
            self.idle.clear()
            self.wake.set()

    def _loop(self) -> None:
        while True:
            self.wake.wait()
            self.wake.clear()
            try:
                self.send_round()
            except Exception:
                log.exception("sending from the web app failed; `remind` will retry")
            with self._lock:  # a kick during the round means another round
                if not self.wake.is_set():
                    self.idle.set()

    def send_round(self) -> None:
        from .. import outbox, webhooks
        from ..db import open_db

        db = open_db(self.settings.database_path, migrate=False)
        try:
            outbox.deliver_all(db, self.settings, self.clock())
            webhooks.deliver_quietly(db, self.clock(), clock=self.clock)
        finally:
            db.close()


def init_app(app, settings, clock: Callable[[], datetime]) -> Sender:
    """Wake the sender after every request that changed something."""
    from flask import request

    sender = Sender(settings, clock)
    app.extensions["monthlydocs.sender"] = sender

    @app.after_request
    def _send_soon(response):
        changed = request.method in ("POST", "PUT", "PATCH", "DELETE")
        if changed and response.status_code < 400:
            sender.kick()
        return response

    return sender

"""Response headers every page gets, and the log filter that hides portal tokens."""

from __future__ import annotations

import logging
import re
import time

from flask import Flask, g, request

from ..links import mask

CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
))
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    # The token is in the URL: it must never travel to another site in a Referer.
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "geolocation=(), microphone=(), interest-cohort=()",
}

access_log = logging.getLogger("monthlydocs.access")

# A token after a portal path: /c/<token>, /join/<token>.
_TOKEN_IN_PATH = re.compile(r"(/(?:c|join)/)([A-Za-z0-9_-]{6,})")
# An API token wherever it appears (one sent in a query string is refused, but the
# request line is logged all the same).
_API_TOKEN = re.compile(r"(mdk_)([A-Za-z0-9_-]{6,})")
# Loggers that may write request paths: ours, Flask's, and the WSGI servers'.
MASKED_LOGGERS = (
    "monthlydocs", "monthlydocs.access", "monthlydocs.web", "werkzeug", "waitress",
    "waitress.queue", "gunicorn.access", "gunicorn.error", "flask_wtf.csrf",
    "flask-limiter",
)


def mask_tokens(text: str) -> str:
    text = _TOKEN_IN_PATH.sub(lambda m: m.group(1) + mask(m.group(2)), text)
    return _API_TOKEN.sub(lambda m: m.group(1) + mask(m.group(2)), text)


class MaskTokens(logging.Filter):
    """Rewrites a record so that no portal token reaches any handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        masked = mask_tokens(message)
        if masked != message:
            record.msg, record.args = masked, ()
        return True


_FILTER = MaskTokens()


def install_log_masking(handler: logging.Handler | None = None) -> None:
    """Mask tokens on every logger that may see a path, and on ``handler`` if given.

    A filter on a logger only sees records created by that very logger, hence the list;
    a filter on a handler sees everything that handler writes.
    """
    for name in MASKED_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
    if handler is not None and _FILTER not in handler.filters:
        handler.addFilter(_FILTER)


def init_app(app: Flask) -> None:
    install_log_masking()
    if _FILTER not in app.logger.filters:
        app.logger.addFilter(_FILTER)

    @app.before_request
    def _start_clock():
        g.started = time.perf_counter()

    @app.after_request
    def _headers(response):
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        if request.endpoint != "static":
            # Pages show private documents and carry the token: keep them out of caches.
            response.headers.setdefault("Cache-Control", "no-store")
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        access_log.info(
            "%s %s %s %s %.0fms", request.remote_addr, request.method,
            request.full_path.rstrip("?"), response.status_code, elapsed * 1000,
        )
        return response

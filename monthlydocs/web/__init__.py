"""The web faces (the client portal, the staff dashboard; later the API) as one Flask app.

``create_app(settings)`` builds it; ``monthlydocs serve`` runs it under waitress and
``portal_server:app`` hands it to any other WSGI server.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from flask import Flask, g, request

LANG_COOKIE = "lang"
LANG_COOKIE_DAYS = 365
# One request may carry several files; each is held to storage.max_upload_mb on its
# own, and the whole body to this many of them.
MAX_FILES_PER_REQUEST = 20


def create_app(
    settings=None,
    *,
    clock: Callable[[], datetime] | None = None,
    send_in_background: bool = False,
) -> Flask:
    """Build the app for ``settings`` (default: the configuration the CLI would use).

    ``clock`` returns the current time; tests pass their own so that nothing sleeps.
    ``send_in_background`` starts a thread that sends what requests queue (emails, SMS,
    webhooks) right away; the servers turn it on, tests that check what is queued leave
    it off.
    """
    if settings is None:
        from ..config import load_settings

        settings = load_settings()
    from ..db import open_db
    from ..errors import ConfigError
    from ..storage import clean_incoming, max_bytes
    from ..timeutil import utcnow
    from . import api, dashboard, errors, portal, security
    from .uploads import PortalRequest

    if not settings.firm.secret_key:
        raise ConfigError(
            "firm.secret_key is empty: the portal signs its forms with it. Put a long "
            "random value there (monthlydocs init writes one)."
        )
    app = Flask(__name__)
    app.request_class = PortalRequest
    app.extensions["monthlydocs.settings"] = settings
    app.extensions["monthlydocs.clock"] = clock or utcnow
    secure = settings.portal.base_url.startswith("https://")
    app.config.update(
        SECRET_KEY=settings.firm.secret_key,
        MAX_CONTENT_LENGTH=max_bytes(settings.storage.max_upload_mb)
        * MAX_FILES_PER_REQUEST
        + 1024 * 1024,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=secure,
        SESSION_COOKIE_NAME="monthlydocs_session",
        # A client may leave the page open all afternoon before sending.
        WTF_CSRF_TIME_LIMIT=12 * 3600,
        # Flask-WTF's HTTPS check wants a Referer header, which the portal forbids
        # (Referrer-Policy: no-referrer keeps the token from leaking); the signed token
        # in the form and the SameSite session cookie are the protection.
        WTF_CSRF_SSL_STRICT=False,
        BABEL_TRANSLATION_DIRECTORIES=_locale_dir(),
        BABEL_DOMAIN="messages",
        BABEL_DEFAULT_LOCALE=settings.firm.default_language,
        BABEL_DEFAULT_TIMEZONE=settings.firm.timezone,
        TEMPLATES_AUTO_RELOAD=False,
    )
    if settings.portal.trusted_proxies:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app,
            x_for=settings.portal.trusted_proxies,
            x_proto=settings.portal.trusted_proxies,
            x_host=settings.portal.trusted_proxies,
        )

    # The schema is brought up to date once here; requests open plain connections.
    settings.files_dir.mkdir(parents=True, exist_ok=True)
    open_db(settings.database_path).close()
    clean_incoming(settings.files_dir, older_than_s=24 * 3600)

    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True
    _init_babel(app, settings)
    from flask_wtf.csrf import CSRFProtect

    CSRFProtect(app)
    app.register_blueprint(portal.bp)
    app.register_blueprint(dashboard.bp)
    security.init_app(app)
    portal.defer_csrf(app)
    portal.init_limits(app, settings)
    dashboard.init_app(app)
    errors.init_app(app)
    api.init_app(app)
    if send_in_background:
        from . import background

        background.init_app(app, settings, app.extensions["monthlydocs.clock"])

    @app.teardown_appcontext
    def _close_db(_exc):
        db = g.pop("db", None)
        if db is not None:
            db.close()

    return app


def _locale_dir() -> str:
    from ..i18n import LOCALE_DIR

    return str(LOCALE_DIR)


def _init_babel(app: Flask, settings) -> None:
    from flask_babel import Babel, get_locale

    from ..config import LANGUAGES

    def select_locale() -> str:
        # ?lang= (remembered in a cookie) > the client's language on record >
        # the browser's Accept-Language > the firm's default.
        chosen = g.get("lang_chosen")  # picked in a form, such as the invite page's
        if chosen in LANGUAGES:
            return chosen
        asked = request.args.get("lang")
        if asked in LANGUAGES:
            g.lang_asked = asked
            return asked
        remembered = request.cookies.get(LANG_COOKIE)
        if remembered in LANGUAGES:
            return remembered
        on_record = g.get("client_language")
        if on_record in LANGUAGES:
            return on_record
        return (
            request.accept_languages.best_match(LANGUAGES)
            or settings.firm.default_language
        )

    Babel(app, locale_selector=select_locale)
    app.jinja_env.globals["get_locale"] = get_locale

    @app.after_request
    def _remember_language(response):
        asked = g.get("lang_asked")
        if asked:
            response.set_cookie(
                LANG_COOKIE,
                asked,
                max_age=LANG_COOKIE_DAYS * 86400,
                httponly=True,
                samesite="Lax",
                secure=request.is_secure,
            )
        return response


def get_db():
    """This request's database connection, opened on first use."""
    from flask import current_app

    from ..db import open_db

    if "db" not in g:
        g.db = open_db(
            current_app.extensions["monthlydocs.settings"].database_path, migrate=False
        )
    return g.db


def get_settings():
    from flask import current_app

    return current_app.extensions["monthlydocs.settings"]


def now() -> datetime:
    from flask import current_app

    return current_app.extensions["monthlydocs.clock"]()

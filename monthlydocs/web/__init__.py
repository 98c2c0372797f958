"""The web faces (portal; later dashboard and API) as one Flask application."""

from __future__ import annotations

from flask import Flask


def create_app(settings=None) -> Flask:
    """Build the app for ``settings`` (default: the configuration the CLI would use)."""
    if settings is None:
        from ..config import load_settings

        settings = load_settings()
    app = Flask(__name__)
    app.config["SECRET_KEY"] = settings.firm.secret_key
    app.extensions["monthlydocs.settings"] = settings

    @app.get("/")
    def index():
        return f"{settings.firm.name}: monthlydocs portal", 200, {
            "Content-Type": "text/plain; charset=utf-8"
        }

    return app

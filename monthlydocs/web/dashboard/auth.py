"""Signing in and out. Failed attempts are rate limited (see ``init_app``)."""

from __future__ import annotations

from flask import current_app, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ...users import LoginFailed, authenticate
from .. import get_db, now
from . import (
    bp,
    choose_language,
    current_staff,
    done,
    safe_next,
    sign_in,
    sign_out,
)


@bp.route("/login", methods=["GET", "POST"])
def login():
    target = safe_next(request.values.get("next"))
    if request.method == "GET":
        if current_staff() is not None:
            return redirect(target, 303)
        return render_template("dashboard/login.html", email="", error=None,
                               next=target)
    email = request.form.get("email", "").strip()
    password = request.form.get("password", "")
    try:
        user = authenticate(
            get_db(), email, password, now(),
            hasher=current_app.extensions.get("monthlydocs.password_hasher"),
        )
    except LoginFailed:
        current_app.logger.info("dashboard sign-in refused for %r from %s", email,
                                request.remote_addr)
        error = _("Wrong email or password.")
        return render_template("dashboard/login.html", email=email, error=error,
                               next=target), 401
    sign_in(user)
    current_app.logger.info("dashboard sign-in: %s", user["email"])
    return redirect(target, 303)


@bp.post("/language")
def language():
    """The signed-in user's own dashboard language ("": follow the browser's)."""
    from ...users import edit_user

    staff = current_staff()
    edit_user(get_db(), staff["email"], language=request.form.get("language", ""))
    g.pop("staff", None)  # read again: the message below is in the new language
    choose_language(current_staff())
    return done(_("Language saved."), safe_next(request.form.get("next")))


@bp.post("/logout")
def logout():
    sign_out()
    return redirect(url_for("dashboard.login"), 303)

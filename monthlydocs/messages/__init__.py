"""Composing what clients read: one folder of templates per kind of message.

``messages/templates/<kind>/`` holds ``subject.txt``, ``body.txt`` and ``body.html``; they
are rendered in the client's language with the shared gettext catalogs. Callers supply
only the context.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

TEMPLATE_DIR = Path(__file__).parent / "templates"


@dataclass
class Composed:
    subject: str
    text: str
    html: str


@cache
def _environment(language: str, html: bool):
    """One Jinja environment per language and flavour, kept for the life of the process.

    Templates ship with the package and do not change while it runs: ``auto_reload`` is
    off, so a compiled template is reused without looking at the file again.
    """
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    from ..i18n import translations

    env = Environment(
        loader=FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=html,
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        auto_reload=False,
    )
    env.install_gettext_translations(translations(language), newstyle=True)
    env.globals.update(_gettext_functions(translations(language)))
    return env


def _gettext_functions(catalog) -> dict[str, Any]:
    """``_``, ``gettext`` and ``ngettext`` for templates, calling the catalog directly.

    They behave as Jinja's "newstyle" gettext (the text is always %-formatted with the
    keyword arguments, and marked safe before formatting when autoescaping, so the
    values are escaped), without its two extra layers of calls per string: a reminder
    translates about twenty strings, and those layers were a third of rendering it.
    """
    from jinja2 import pass_eval_context
    from markupsafe import Markup

    @pass_eval_context
    def gettext(eval_ctx, string: str, /, **variables: Any) -> str:
        text = catalog.gettext(string)
        if eval_ctx.autoescape:
            text = Markup(text)
        return text % variables

    @pass_eval_context
    def ngettext(
        eval_ctx, singular: str, plural: str, num: int, /, **variables: Any
    ) -> str:
        variables.setdefault("num", num)
        text = catalog.ngettext(singular, plural, num)
        if eval_ctx.autoescape:
            text = Markup(text)
        return text % variables

    return {"_": gettext, "gettext": gettext, "ngettext": ngettext}


@cache
def _template(kind: str, name: str, language: str, html: bool):
    return _environment(language, html).get_template(f"{kind}/{name}")


def compose(kind: str, language: str, context: dict[str, Any]) -> Composed:
    """Render the three parts of message ``kind`` in ``language``."""
    subject = _template(kind, "subject.txt", language, False).render(context)
    text = _template(kind, "body.txt", language, False).render(context)
    html = _template(kind, "body.html", language, True).render(context)
    return Composed(
        subject=" ".join(subject.split()), text=text.strip() + "\n", html=html
    )


def render_sms(kind: str, language: str, context: dict[str, Any]) -> str:
    return " ".join(_template(kind, "sms.txt", language, False).render(context).split())

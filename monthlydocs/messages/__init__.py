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
    )
    env.install_gettext_translations(translations(language), newstyle=True)
    return env


def compose(kind: str, language: str, context: dict[str, Any]) -> Composed:
    """Render the three parts of message ``kind`` in ``language``."""
    text_env = _environment(language, html=False)
    subject = text_env.get_template(f"{kind}/subject.txt").render(context)
    return Composed(
        subject=" ".join(subject.split()),
        text=text_env.get_template(f"{kind}/body.txt").render(context).strip() + "\n",
        html=_environment(language, html=True)
        .get_template(f"{kind}/body.html")
        .render(context),
    )


def render_sms(kind: str, language: str, context: dict[str, Any]) -> str:
    text_env = _environment(language, html=False)
    return " ".join(text_env.get_template(f"{kind}/sms.txt").render(context).split())

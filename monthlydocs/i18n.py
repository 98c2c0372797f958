"""Translations shared by the messages the core composes and the web pages.

One gettext catalog per language under ``monthlydocs/locale``; Flask-Babel reads the same
folder, so a word is translated once for email and portal alike.
"""

from __future__ import annotations

from datetime import date
from functools import cache, lru_cache
from pathlib import Path

from .config import LANGUAGES

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "messages"


def pick_language(language: str | None, default: str) -> str:
    return language if language in LANGUAGES else default


@cache
def translations(language: str):
    """A babel Translations object (NullTranslations for English or a missing catalog)."""
    from babel.support import NullTranslations, Translations

    if language == "en":
        return NullTranslations()
    return Translations.load(str(LOCALE_DIR), [language], domain=DOMAIN)


def gettext(language: str, message: str, **values) -> str:
    text = translations(language).gettext(message)
    return text % values if values else text


@lru_cache(maxsize=4096)
def format_day(day: date, language: str, form: str = "long") -> str:
    """A date in the language's own words (cached: a run formats the same few dates
    for thousands of messages)."""
    from babel.dates import format_date

    return format_date(day, format=form, locale=language)


@lru_cache(maxsize=4096)
def period_label(period: str, language: str) -> str:
    """'2026-12' -> 'December 2026' / 'décembre 2026'; '2026-Q4' -> 'Q4 2026'."""
    from babel.dates import format_date

    from .periods import period_start

    if period == "once":
        return ""
    start = period_start(period)
    if "-Q" in period:
        return format_date(start, "QQQ yyyy", locale=language)
    if "-" in period:
        return format_date(start, "LLLL yyyy", locale=language)
    return period

"""Periods (``2026-12``, ``2026-Q4``, ``2026``, ``once``) and due dates: pure functions."""

from __future__ import annotations

import calendar
import re
from datetime import date

from .errors import InvalidPeriod

CADENCES = ("monthly", "quarterly", "yearly", "once")

_FORMS = {
    "monthly": (re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$"), "2026-12"),
    "quarterly": (re.compile(r"^(\d{4})-Q([1-4])$"), "2026-Q4"),
    "yearly": (re.compile(r"^(\d{4})$"), "2026"),
    "once": (re.compile(r"^once$"), "once"),
}


def current_period(cadence: str, today: date) -> str:
    """The period of ``cadence`` that contains ``today``."""
    if cadence == "monthly":
        return f"{today.year:04d}-{today.month:02d}"
    if cadence == "quarterly":
        return f"{today.year:04d}-Q{(today.month - 1) // 3 + 1}"
    if cadence == "yearly":
        return f"{today.year:04d}"
    if cadence == "once":
        return "once"
    raise InvalidPeriod(f"Unknown cadence {cadence!r}")


def check_period(period: str, cadence: str) -> str:
    """Return ``period`` normalised, or raise InvalidPeriod naming the expected form."""
    text = period.strip().upper() if cadence != "once" else period.strip().lower()
    pattern, example = _FORMS[cadence]
    if not pattern.match(text):
        raise InvalidPeriod(
            f"Period {period!r} does not fit a {cadence} template: write it like {example}"
        )
    return text


def period_start(period: str) -> date | None:
    """First day of a period (None for ``once``)."""
    if period == "once":
        return None
    if "-Q" in period:
        year, quarter = period.split("-Q")
        return date(int(year), (int(quarter) - 1) * 3 + 1, 1)
    if "-" in period:
        year, month = period.split("-")
        return date(int(year), int(month), 1)
    return date(int(period), 1, 1)


def due_date(due_day: int, today: date) -> date:
    """The next day numbered ``due_day`` on or after ``today``.

    Day 31 in a 30-day month falls on the month's last day. Generated on 1 December with
    due day 10, a checklist is due on 10 December; generated on 15 December, on 10 January.
    """
    candidate = _clamped(today.year, today.month, due_day)
    if candidate >= today:
        return candidate
    year, month = (
        (today.year + 1, 1) if today.month == 12 else (today.year, today.month + 1)
    )
    return _clamped(year, month, due_day)


def _clamped(year: int, month: int, day: int) -> date:
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))

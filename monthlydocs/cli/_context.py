"""What every command gets through ``ctx.obj``: settings and database, opened on first use."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

NOW_VARIABLE = "MONTHLYDOCS_NOW"


class Context:
    def __init__(self, config: Path | None, verbose: bool):
        self.config = config
        self.verbose = verbose

    @cached_property
    def settings(self):
        from ..config import load_settings

        return load_settings(self.config)

    @cached_property
    def db(self):
        from ..db import open_db

        path = self.settings.database_path
        path.parent.mkdir(parents=True, exist_ok=True)
        return open_db(path)

    def now(self):
        """The wall clock, or the moment in ``MONTHLYDOCS_NOW`` (for tests: pins the
        clock of every command; without an offset it is the firm's local time)."""
        import os

        from ..timeutil import utcnow

        pinned = os.environ.get(NOW_VARIABLE)
        if not pinned:
            return utcnow()
        from ..errors import ConfigError
        from ..timeutil import parse_moment

        try:
            return parse_moment(pinned, self.settings.firm.timezone)
        except ValueError:
            raise ConfigError(
                f"{NOW_VARIABLE}={pinned!r} is not a date and time like "
                "2026-12-06T10:00"
            ) from None

    def today(self):
        from ..timeutil import local_date

        return local_date(self.now(), self.settings.firm.timezone)

    def client(self, ref: str) -> dict:
        from ..clients import find_client

        return find_client(self.db, ref)

"""`client import` of an N-row CSV file vs raw csv + sqlite3 inserting the same rows.

The file is what a spreadsheet exports: company, email, a French phone number written
nationally, a language and a note. Baseline: csv.reader over the file and one sqlite3
executemany of its cells into the clients table (same schema and pragmas, fresh file).
monthlydocs: importing.import_clients(), called as `monthlydocs client import` calls it;
on top of the baseline it detects the encoding, header and delimiter, validates and
normalizes every email and phone number, and writes one event per client.

Process line: the command against the same baseline as a stdlib script.
"""

from __future__ import annotations

import csv
import sqlite3
import sys
import tempfile
from pathlib import Path

from . import (
    Line,
    Report,
    Workspace,
    empty_database,
    median_time,
    monthlydocs_command,
    run_process,
)

HEADER = ["Company", "Email", "Phone", "Language", "Notes"]
LANGUAGES = ["fr", "en", "Deutsch", "es", "id", ""]
INSERT_SQL = (
    "INSERT INTO clients (name, email, phone, language, notes, status, created_at,"
    " updated_at) VALUES (?, ?, ?, ?, ?, 'active', ?, ?)"
)

RAW_SCRIPT = f"""
import csv, sqlite3, sys, time
stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
conn = sqlite3.connect(sys.argv[1])
conn.execute("PRAGMA synchronous = NORMAL")
with open(sys.argv[2], newline="", encoding="utf-8") as file, conn:
    rows = csv.reader(file)
    next(rows)
    conn.executemany({INSERT_SQL!r}, ((*row, stamp, stamp) for row in rows))
"""


def run(report: Report, clients: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory(prefix="monthlydocs-bench-") as tmp:
        folder = Path(tmp)
        path = write_csv(folder / "clients.csv", clients)
        fresh = empty_database(folder / "raw")
        workspace = Workspace(folder / "ws")
        label = f"client import, {clients:,} rows"

        raw = median_time(
            lambda conn: _raw_import(conn, path),
            repeat,
            setup=lambda: _connect(fresh()),
            teardown=lambda conn: conn.close(),
        )
        core = _core(workspace, path, clients, repeat)
        report.add(Line.ratio_goal(label, raw, core, 2))
        region = workspace.settings.firm.country
        validated = median_time(
            lambda conn: _raw_import(conn, path, region),
            repeat,
            setup=lambda: _connect(fresh()),
            teardown=lambda conn: conn.close(),
        )
        report.add(Line(label + ", baseline validating too", validated, core))

        raw_process = median_time(
            lambda db: run_process(
                [sys.executable, "-c", RAW_SCRIPT, str(db), str(path)]
            ),
            repeat,
            setup=fresh,
        )
        command = [
            *monthlydocs_command(),
            "--config",
            str(workspace.config),
            "client",
            "import",
            str(path),
        ]
        process = median_time(
            lambda _: run_process(command), repeat, setup=workspace.restore
        )
        report.add(Line.ratio_goal(label + " (process)", raw_process, process, 2))


def write_csv(path: Path, rows: int) -> Path:
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(HEADER)
        for n in range(1, rows + 1):
            digits = f"06{n:08d}"
            phone = " ".join(digits[i : i + 2] for i in range(0, 10, 2))
            writer.writerow(
                [
                    f"Client {n} SARL",
                    f"contact{n}@client{n}.example",
                    phone,
                    LANGUAGES[n % len(LANGUAGES)],
                    f"Note {n}" if n % 3 else "",
                ]
            )
    return path


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def _raw_import(conn: sqlite3.Connection, path: Path, region: str = "") -> None:
    """The baseline; with a region, emails and phones are checked as the importer does
    (email_validator, phonenumbers), to show what is left once that cost is counted."""
    stamp = "2026-12-01T09:00:00Z"
    with path.open(newline="", encoding="utf-8") as file, conn:
        rows = csv.reader(file)
        next(rows)
        if region:
            rows = (_validated(row, region) for row in rows)
        conn.executemany(INSERT_SQL, ((*row, stamp, stamp) for row in rows))


def _validated(row: list[str], region: str) -> list[str]:
    import phonenumbers
    from email_validator import validate_email

    name, email, phone, language, notes = row
    number = phonenumbers.parse(phone, region)
    if not phonenumbers.is_valid_number(number):
        raise ValueError(phone)
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    email = validate_email(email, check_deliverability=False).normalized
    return [name, email, e164, language, notes]


def _core(workspace: Workspace, path: Path, rows: int, repeat: int) -> float:
    from monthlydocs.importing import import_clients
    from monthlydocs.timeutil import utcnow

    region = workspace.settings.firm.country

    def timed(db) -> None:
        result = import_clients(
            db,
            path,
            utcnow(),
            region=region,
            overrides={},
            dry_run=False,
            template_id=None,
        )
        assert len(result.client_ids) == rows and not result.rejected, result.counts

    return median_time(
        timed, repeat, setup=workspace.open, teardown=lambda db: db.close()
    )

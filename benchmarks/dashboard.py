"""The dashboard: the overview over N checklists, and the ZIP export of 1 GB.

Overview: N clients with this month's checklist (8 slots), in every state (items
received at random, some opened, some to call). monthlydocs: a signed-in GET of an
overview page through Flask's test client (routing, session, the queries, the template),
for the default page (sorted by urgency), the last page sorted by client, one state and
a search. Baseline: the same SQL statements the page runs (counts, page, details), with
the plain sqlite3 module on the same file. Goals: at most 3x, and under 100 ms.

Export: 200 files of 5 MiB (1000 MiB) spread over 20 clients. monthlydocs: GET
/dashboard/export.zip, the body read as it streams and thrown away. Baseline: a
``zipfile`` loop storing the same files under the same names into a sink that discards
them. Goal: at least 0.7x the baseline's MB/s. Memory: the same download in a process of
its own for 1 client (50 MiB) and for all 20 (1000 MiB), peak RSS (VmHWM) and the
tracemalloc peak.
"""

from __future__ import annotations

import os
import random
import re
import sqlite3
import sys
import tempfile
import zipfile
from datetime import UTC, date, datetime
from pathlib import Path

from . import Line, Report, Workspace, median_time, run_process

NOW = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
TODAY = date(2026, 12, 5)
PERIOD = "2026-12"
EMAIL, PASSWORD = "bench@firm.example", "benchmark password"
FILES, FILE_MIB, EXPORT_CLIENTS = 200, 5, 20

# One export in a process of its own: peak RSS (VmHWM) and tracemalloc peak, in bytes.
MEMORY_SCRIPT = f"""
import re, sys, tracemalloc
from datetime import datetime
from pathlib import Path
from argon2 import PasswordHasher
from monthlydocs.config import load_settings
from monthlydocs.web import create_app
settings = load_settings(Path(sys.argv[1]), environ={{}})
app = create_app(settings, clock=lambda: datetime.fromisoformat({NOW.isoformat()!r}))
app.extensions["monthlydocs.password_hasher"] = PasswordHasher(
    time_cost=1, memory_cost=1024, parallelism=1)
http = app.test_client()
page = http.get("/dashboard/login").get_data(as_text=True)
token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
http.post("/dashboard/login", data={{"csrf_token": token, "email": {EMAIL!r},
                                     "password": {PASSWORD!r}}})
tracemalloc.start()
response = http.get("/dashboard/export.zip" + sys.argv[2], buffered=False)
total = sum(len(chunk) for chunk in response.response)
response.close()
peak = tracemalloc.get_traced_memory()[1]
assert total == int(response.headers["Content-Length"]), total
status = Path("/proc/self/status").read_text()
print(int(re.search(r"VmHWM:\\s+(\\d+)", status).group(1)) * 1024, peak, total)
"""


def run(report: Report, clients: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as tmp:
        folder = Path(tmp)
        _overview(report, folder / "overview", clients, repeat)
        _export(report, folder / "export", repeat)


# -- the overview ----------------------------------------------------------------------


def _overview(report: Report, folder: Path, clients: int, repeat: int) -> None:
    from monthlydocs import overview

    workspace = Workspace(folder, clients)
    _checklists_in_every_state(workspace)
    http = _signed_in(workspace)
    db = sqlite3.connect(workspace.database)
    db.create_function("monthlydocs_fold", 1, overview.fold, deterministic=True)
    repeat = max(repeat, 10)  # one page takes milliseconds: more runs, steadier median
    pages = [
        ("default page", overview.Query(period=PERIOD), f"?period={PERIOD}"),
        ("last page by client",
         overview.Query(period=PERIOD, sort="client", page=clients // 50),
         f"?period={PERIOD}&sort=client&page={clients // 50}"),
        ("one state", overview.Query(period=PERIOD, state="partial"),
         f"?period={PERIOD}&state=partial"),
        ("search", overview.Query(period=PERIOD, search="client 99"),
         f"?period={PERIOD}&q=client+99"),
    ]
    for name, query, arguments in pages:
        raw = median_time(lambda _, q=query: _raw_page(db, q), repeat)
        served = median_time(lambda _, a=arguments: _get(http, a), repeat)
        label = f"dashboard overview, {clients:,} checklists, {name}"
        report.add(Line.ratio_goal(label, raw, served, 3))
        report.add(Line.time_goal(label + " (time)", raw, served, 0.1))
    db.close()


def _checklists_in_every_state(workspace: Workspace) -> None:
    """This month's checklists, then a mix of states written straight into the rows
    (setup, not what is measured): 40 % of items received, a third opened, one in
    twenty past its last reminder, a few complete."""
    from monthlydocs.checklists import Request, generate
    from monthlydocs.templates import get_template

    db = workspace.open()
    generate(db, [Request(get_template(db, "bench"), PERIOD)], NOW, TODAY, send=False)
    rnd = random.Random(5)
    items = [row[0] for row in db.execute("SELECT id FROM checklist_items")]
    stamp = "2026-12-03T10:00:00Z"
    with db.conn:
        db.conn.executemany(
            "UPDATE checklist_items SET state = 'received', updated_at = ?"
            " WHERE id = ?",
            ((stamp, i) for i in rnd.sample(items, len(items) * 2 // 5)),
        )
        db.conn.execute(
            "UPDATE checklists SET first_opened_at = ?, link_sent_at = ?"
            " WHERE id % 3 = 0", [stamp, "2026-12-01T08:00:00Z"])
        db.conn.execute(
            "UPDATE checklists SET escalated_at = ? WHERE id % 20 = 0", [stamp])
        db.conn.execute(
            "UPDATE checklists SET completed_at = ? WHERE id % 7 = 0", [stamp])
    _add_staff(db)
    db.close()
    # The states are part of the snapshot every measurement starts from.
    workspace.snapshot.write_bytes(workspace.database.read_bytes())


def _add_staff(db) -> None:
    from argon2 import PasswordHasher

    from monthlydocs.users import add_user

    add_user(db, EMAIL, PASSWORD, NOW,
             hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


def _signed_in(workspace: Workspace):
    from argon2 import PasswordHasher

    from monthlydocs.web import create_app

    app = create_app(workspace.settings, clock=lambda: NOW)
    app.extensions["monthlydocs.password_hasher"] = PasswordHasher(
        time_cost=1, memory_cost=1024, parallelism=1)
    http = app.test_client()
    page = http.get("/dashboard/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    signed = http.post("/dashboard/login", data={
        "csrf_token": token, "email": EMAIL, "password": PASSWORD})
    assert signed.status_code == 303, signed.status_code
    return http


def _get(http, arguments: str) -> None:
    response = http.get("/dashboard/" + arguments)
    assert response.status_code == 200, response.status_code
    assert b'id="table"' in response.data


def _raw_page(db: sqlite3.Connection, query) -> None:
    """The statements behind one overview page, as the page runs them."""
    import json

    from monthlydocs import overview

    today = {"today": TODAY.isoformat()}
    sql, params = overview.counts_sql(query)
    db.execute(sql, {**params, **today}).fetchall()
    if query.search:
        sql, params = overview.matching_sql(query)
        db.execute(sql, {**params, **today}).fetchone()
    sql, params = overview.page_sql(query, query.page)
    rows = db.execute(sql, {**params, **today}).fetchall()
    ids = json.dumps([row[0] for row in rows])
    db.execute(overview.DETAILS_SQL, {"ids": ids}).fetchall()


# -- the export ------------------------------------------------------------------------


class _Sink:
    """Where the baseline's ZIP goes: counted, then forgotten (not seekable)."""

    def __init__(self):
        self.size = 0

    def write(self, data) -> int:
        self.size += len(data)
        return len(data)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        pass


def _export(report: Report, folder: Path, repeat: int) -> None:
    from monthlydocs import export

    workspace = Workspace(folder, EXPORT_CLIENTS)
    _documents(workspace)
    http = _signed_in(workspace)
    db = workspace.open()
    entries = export.entries(export.select(db, export.Selection()),
                             workspace.settings.files_dir)
    db.close()
    total = sum(entry.row["size"] for entry in entries)
    mb = total / 1e6
    repeat = max(repeat // 2, 2)  # a gigabyte a run

    def raw(_):
        sink = _Sink()
        with zipfile.ZipFile(sink, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
            for entry in entries:
                zf.write(entry.path, entry.arcname)
        assert sink.size > total

    def served(_):
        response = http.get("/dashboard/export.zip", buffered=False)
        size = sum(len(chunk) for chunk in response.response)
        response.close()
        assert size == int(response.headers["Content-Length"]) > total

    raw(None)  # read every file once, so both sides start from the page cache
    baseline = mb / median_time(raw, repeat)
    value = mb / median_time(served, repeat)
    report.add(Line(f"dashboard export, {FILES} files of {FILE_MIB} MiB (MB/s)",
                    baseline, value, goal=">= 0.7x", passed=value >= 0.7 * baseline,
                    unit="MB/s"))
    small, big = (_export_memory(workspace, arguments)
                  for arguments in ("?client=1", ""))
    report.add(Line(f"dashboard export memory, max RSS: {small[2] / 1e6:,.0f} MB vs "
                    f"{big[2] / 1e6:,.0f} MB", small[0] / 2**20, big[0] / 2**20,
                    unit="MB"))
    report.add(Line("dashboard export memory, tracemalloc peak: same two",
                    small[1] / 2**20, big[1] / 2**20, unit="MB"))


def _documents(workspace: Workspace) -> None:
    """200 stored files of random bytes, 10 per client, as uploads would leave them."""
    from monthlydocs.checklists import Request, generate
    from monthlydocs.templates import get_template

    db = workspace.open()
    generate(db, [Request(get_template(db, "bench"), PERIOD)], NOW, TODAY, send=False)
    items = list(db.execute(
        "SELECT i.id, c.client_id FROM checklist_items i"
        " JOIN checklists c ON c.id = i.checklist_id ORDER BY c.client_id, i.position"))
    per_client: dict[int, list[int]] = {}
    for item_id, client_id in items:
        per_client.setdefault(client_id, []).append(item_id)
    rows = []
    files_dir = workspace.settings.files_dir
    for n in range(FILES):
        client_id = n % EXPORT_CLIENTS + 1
        item_id = per_client[client_id][(n // EXPORT_CLIENTS) % 8]
        relative = f"{client_id:06d}/{PERIOD}/scan-{n:03d}.pdf"
        path = files_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        content = os.urandom(FILE_MIB * 2**20)
        path.write_bytes(content)
        rows.append((item_id, f"scan {n:03d}.pdf", relative, len(content),
                     f"{n:064x}", "application/pdf", "2026-12-03T10:00:00Z"))
    with db.conn:
        db.conn.executemany(
            "INSERT INTO documents (item_id, original_filename, stored_path, size,"
            " sha256, content_type, uploaded_at) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    _add_staff(db)
    db.close()
    workspace.snapshot.write_bytes(workspace.database.read_bytes())


def _export_memory(workspace: Workspace, arguments: str) -> tuple[int, int, int]:
    workspace.restore()
    out = run_process([sys.executable, "-c", MEMORY_SCRIPT, str(workspace.config),
                       arguments])
    rss, peak, total = (int(value) for value in out.split())
    return rss, peak, total

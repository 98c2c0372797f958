"""The API's checklist list walked page by page, and webhooks delivered per second.

List: a workspace of N clients with one checklist each (8 slots) and an API token.
Baseline: the dashboard's own query (overview.py: the counts, one page of 100 rows and
their details, as the overview runs them) for every page of the same N checklists, raw
with sqlite3. monthlydocs: GET
/api/v1/checklists?limit=100 through Flask's test client, following next_cursor until the
last page (N/100 requests, each authenticated, rate-limited, paged in SQL and shaped as
JSON). A second line gives requests per second beside the same keyset page query run
with sqlite3.

Webhooks: N/10 events for one webhook whose receiver is a stdlib HTTP server in a process
of its own, answering 204. Baseline: a urllib loop POSTing as many bodies of the same
size, each signed with HMAC-SHA256, over a new connection each, as monthlydocs does.
monthlydocs: webhooks.deliver_due(): queue, then claim, sign, POST and mark each one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
import subprocess
import sys
import tempfile
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from . import Line, Report, Workspace, clean_env, median_time

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
PAGE = 100

RECEIVER_SCRIPT = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


def run(report: Report, clients: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-api-") as folder:
        _list(report, Path(folder) / "list", clients, repeat)
        _webhooks(report, Path(folder) / "hooks", max(clients // 10, 100), repeat)


# -- the checklist list ------------------------------------------------------------------


def _list(report: Report, folder: Path, clients: int, repeat: int) -> None:
    from monthlydocs import overview

    from .dashboard import _raw_page

    workspace, token = _list_workspace(folder, clients)
    pages = -(-clients // PAGE)

    def dashboard_pages(_):
        conn = sqlite3.connect(workspace.database)
        try:
            for number in range(1, pages + 1):
                _raw_page(conn, overview.Query(period="2026-12", page=number,
                                               per_page=PAGE))
        finally:
            conn.close()

    baseline = median_time(dashboard_pages, repeat)
    http = _client(workspace, token)
    walked = median_time(lambda _: _walk(http, clients), repeat)
    report.add(
        Line(
            f"API checklists, {clients:,} in {pages} pages (requests/s) vs the "
            "dashboard's page queries",
            pages / baseline,
            pages / walked,
            unit="req/s",
        )
    )
    raw_pages = median_time(lambda _: _raw_pages(workspace.database, clients), repeat)
    report.add(
        Line(
            f"API checklist pages of {PAGE} (requests/s) vs raw page queries",
            pages / raw_pages,
            pages / walked,
            unit="req/s",
        )
    )


def _list_workspace(folder: Path, clients: int) -> tuple[Workspace, str]:
    from monthlydocs import checklists, templates, tokens
    from monthlydocs.db import open_db

    workspace = Workspace(folder, clients=clients)
    db = open_db(workspace.database)
    try:
        template = templates.get_template(db, "bench")
        checklists.generate(
            db, [checklists.Request(template)], NOW, NOW.date(), send=False
        )
        token = tokens.create_token(db, "bench", NOW)[1]
    finally:
        db.close()
    return workspace, token


def _client(workspace: Workspace, token: str):
    from monthlydocs.web import create_app

    workspace.settings.values["api"] = {"rate_limit": "1000000 per minute"}
    app = create_app(workspace.settings, clock=lambda: NOW)
    http = app.test_client()
    http.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return http


def _walk(http, clients: int) -> None:
    seen, url = 0, f"/api/v1/checklists?limit={PAGE}"
    while url:
        response = http.get(url)
        if response.status_code != 200:
            raise RuntimeError(response.get_data(as_text=True))
        body = response.get_json()
        seen += len(body["data"])
        cursor = body["next_cursor"]
        url = f"/api/v1/checklists?limit={PAGE}&cursor={cursor}" if cursor else None
    assert seen == clients, seen


def _raw_pages(database: Path, clients: int) -> None:
    """The API's keyset page query itself, page after page, with sqlite3."""
    from monthlydocs.paging import _CHECKLIST_SQL

    sql = _CHECKLIST_SQL.format(where="c.id > ? AND c.archived_at IS NULL")
    conn = sqlite3.connect(database)
    try:
        seen, after = 0, 0
        while True:
            rows = conn.execute(
                sql, [after, None, NOW.date().isoformat(), None, PAGE + 1]
            ).fetchall()
            seen += min(len(rows), PAGE)
            if len(rows) <= PAGE:
                break
            after = rows[PAGE - 1][0]
    finally:
        conn.close()
    assert seen == clients, seen


# -- webhooks -------------------------------------------------------------------------------


def _webhooks(report: Report, folder: Path, count: int, repeat: int) -> None:
    receiver = subprocess.Popen(
        [sys.executable, "-c", RECEIVER_SCRIPT],
        stdout=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    try:
        url = f"http://127.0.0.1:{receiver.stdout.readline().strip()}/hooks"
        workspace = _hooks_workspace(folder, url, count)
        sample = _sample_body(workspace)
        baseline = median_time(lambda _: _raw_posts(url, sample, count), repeat)
        value = median_time(
            lambda db: _deliver(db, count),
            repeat,
            setup=workspace.open,
            teardown=lambda db: db.close(),
        )
        report.add(
            Line(
                f"webhooks, {count:,} deliveries (deliveries/s)",
                count / baseline,
                count / value,
                goal=">= 0.5x",
                passed=baseline / value >= 0.5,
                unit="/s",
            )
        )
    finally:
        receiver.terminate()
        receiver.wait(timeout=10)


def _hooks_workspace(folder: Path, url: str, count: int) -> Workspace:
    """A workspace with ``count`` events waiting for one webhook (setup, not timed)."""
    import shutil

    from monthlydocs.db import open_db
    from monthlydocs.webhooks import add_webhook

    workspace = Workspace(folder)
    db = open_db(workspace.database)
    try:
        add_webhook(db, url, "all", NOW)
        with db.conn:
            db.conn.executemany(
                "INSERT INTO events (at, actor, action, subject_type, subject_id,"
                " client_id, data) VALUES (?, 'client', 'document:uploaded',"
                " 'document', ?, ?, ?)",
                (
                    (
                        "2026-12-01T09:00:00Z",
                        n,
                        n,
                        json.dumps({"item_id": n, "size": 123456}),
                    )
                    for n in range(1, count + 1)
                ),
            )
    finally:
        db.close()
    shutil.copyfile(workspace.database, workspace.snapshot)
    return workspace


def _sample_body(workspace: Workspace) -> bytes:
    from monthlydocs.webhooks import event_body

    db = workspace.open()
    try:
        event = next(db.query("SELECT * FROM events ORDER BY id DESC LIMIT 1"))
    finally:
        db.close()
    return json.dumps(event_body(event, "document.uploaded")).encode()


def _raw_posts(url: str, body: bytes, count: int) -> None:
    secret = b"whsec_bench"
    for _ in range(count):
        stamp = str(int(NOW.timestamp())).encode()
        digest = hmac.new(secret, stamp + b"." + body, hashlib.sha256).hexdigest()
        request = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Monthlydocs-Signature": f"t={stamp.decode()},v1={digest}",
            },
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 204


def _deliver(db, count: int) -> None:
    from monthlydocs.webhooks import deliver_due

    result = deliver_due(db, NOW)
    if result.delivered != count:
        raise RuntimeError(
            f"delivered {result.delivered} of {count}: {result.errors[:3]}"
        )

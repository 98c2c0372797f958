"""Uploads through the real portal server (`monthlydocs serve`) vs a raw WSGI app.

Both servers are waitress processes on loopback with the same number of threads, and
both receive byte-identical multipart bodies streamed by http.client from a file on disk
(the client never holds a large file in memory). The baseline app reads ``wsgi.input``
in 1 MB chunks into a file beside the workspace's file store and fsyncs it: the least any
implementation must do once waitress has buffered the body. monthlydocs also parses the
form, checks the CSRF token, hashes, checks the content type, renames the file into
place and records it.

- A 200 MB file (and a 50 MB one) posted to one slot: MB/s both ways (goal: monthlydocs
  at least half the raw rate), the server's peak RSS growth (VmHWM after a warm-up and
  after the uploads; goal under 50 MB whatever the size), each stored file's sha256.
- 50 clients at once, each with its own session and checklist, sending five 2 MB files:
  every file stored with the right sha256 and no error status; the aggregate MB/s
  beside the raw app receiving the same bodies; the median time of a portal page GET
  while the uploads run against the same GET idle.

The ``clients`` argument of ``run`` does not apply here: the sizes are fixed.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path

from . import TEMPLATE, Line, Report, Workspace, clean_env, monthlydocs_command

MB = 1024 * 1024
CHUNK = MB
BIG_MB = 200
SMALL_BIG_MB = 50  # the second size, to show memory does not grow with the file
MAX_UPLOAD_MB = 300
THREADS = 8  # `monthlydocs serve` default, given to both servers
CONCURRENT = 50
FILES_EACH = 5
FILE_MB = 2
RATE_GOAL = 0.5
MEMORY_GOAL_MB = 50
IDLE_GETS = 30
START_TIMEOUT_S = 30.0
REQUEST_TIMEOUT_S = 300.0
# Slot positions used, so that no upload is a duplicate of an earlier one in its slot.
BIG_POSITION, CONCURRENT_POSITION, MEDIUM_POSITION, WARM_POSITION = 1, 2, 3, 8

# The baseline: the least a WSGI app can do with an upload, under the same waitress.
RAW_SERVER = """
import os, sys, tempfile
from waitress import serve
port, folder = int(sys.argv[1]), sys.argv[2]
def app(environ, start_response):
    size, name = 0, ""
    if environ["REQUEST_METHOD"] == "POST":
        stream = environ["wsgi.input"]
        fd, path = tempfile.mkstemp(prefix="raw-", dir=folder)
        with os.fdopen(fd, "wb") as out:
            while chunk := stream.read(1 << 20):
                size += len(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        name = os.path.basename(path)
    body = f"{size} {name}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
serve(app, host="127.0.0.1", port=port, threads=int(sys.argv[3]), ident="raw",
      max_request_body_size=int(sys.argv[4]))
"""

# Fixed, so that both servers receive byte-identical bodies.
BOUNDARY = "----monthlydocs-bench-5f0c1d9a7e"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def run(report: Report, clients: int, repeat: int) -> None:
    if not Path("/proc/self/status").exists():
        report.notes.append("uploads: skipped, peak RSS is read from /proc (Linux).")
        return
    with tempfile.TemporaryDirectory(prefix="monthlydocs-bench-") as tmp:
        folder = Path(tmp)
        bench = _Bench.prepare(folder, max(CONCURRENT + 1, repeat))
        big = {}
        for size_mb, position in (
            (SMALL_BIG_MB, MEDIUM_POSITION),
            (BIG_MB, BIG_POSITION),
        ):
            payload = _file_payload(folder / f"upload-{size_mb}.pdf", size_mb * MB)
            big[size_mb] = _one_big_upload(bench, payload, position, repeat)
            payload.path.unlink()
        _report_big(report, big)
        _concurrent(report, bench)


# -- the workspace and the servers ---------------------------------------------------


@dataclass
class _Bench:
    folder: Path
    workspace: Workspace
    tokens: list[str]  # index i: client i + 1's checklist token
    items: list[list[int]]  # index i: its item ids by slot position (0-based)

    @classmethod
    def prepare(cls, folder: Path, count: int) -> _Bench:
        """Workspace of ``count`` clients, each with this month's checklist of 8 slots."""
        from monthlydocs import checklists, templates
        from monthlydocs.config import load_settings
        from monthlydocs.db import open_db
        from monthlydocs.timeutil import local_date, utcnow
        from monthlydocs.workspace import set_value

        workspace = Workspace(folder / "ws", clients=count)
        text = workspace.config.read_text(encoding="utf-8")
        text = set_value(text, "storage", "max_upload_mb", MAX_UPLOAD_MB)
        workspace.config.write_text(text, encoding="utf-8")
        workspace.settings = load_settings(workspace.config, environ={})
        db = open_db(workspace.database)
        try:
            template = templates.get_template(db, TEMPLATE)
            now = utcnow()
            checklists.generate(
                db,
                [checklists.Request(template)],
                now,
                local_date(now, workspace.settings.firm.timezone),
                send=False,
            )
            rows = db.conn.execute(
                "SELECT id, token FROM checklists ORDER BY client_id"
            ).fetchall()
            tokens = [token for _id, token in rows]
            items = [
                [item["id"] for item in checklists.items(db, checklist_id)]
                for checklist_id, _token in rows
            ]
        finally:
            db.close()
        (folder / "raw").mkdir()
        return cls(folder, workspace, tokens, items)

    @property
    def files_dir(self) -> Path:
        return self.workspace.settings.files_dir

    def portal_server(self, stack: contextlib.ExitStack) -> _Server:
        config = str(self.workspace.config)
        return stack.enter_context(
            _Server(
                self.folder,
                "portal",
                lambda port: [
                    *monthlydocs_command(),
                    "--config",
                    config,
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--threads",
                    str(THREADS),
                ],
            )
        )

    def raw_server(self, stack: contextlib.ExitStack) -> _Server:
        limit = str(MAX_UPLOAD_MB * MB * 20 + MB)  # as `monthlydocs serve` sets it
        raw_dir = str(self.folder / "raw")
        return stack.enter_context(
            _Server(
                self.folder,
                "raw",
                lambda port: [
                    sys.executable,
                    "-c",
                    RAW_SERVER,
                    str(port),
                    raw_dir,
                    str(THREADS),
                    limit,
                ],
            )
        )


class _Server:
    """A server process on a free loopback port; stopped on exit, whatever happened."""

    def __init__(self, folder: Path, name: str, argv: Callable[[int], list[str]]):
        self.name = name
        self.port = _free_port()
        self.log_path = folder / f"{name}-{self.port}.log"
        self.argv = argv(self.port)
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> _Server:
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, env=clean_env()
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the {self.name} server did not start: {self.log_tail()}")

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def peak_rss(self) -> int:
        """VmHWM of the server process, in bytes."""
        assert self.process is not None
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) * 1024

    def log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-2000:]
        return ""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- the client side -----------------------------------------------------------------


@dataclass
class _Payload:
    """A file to upload: its bytes come from ``chunks()``, never all in memory."""

    name: str
    size: int
    sha256: str
    chunks: Callable[[], Iterator[bytes | memoryview]]
    path: Path | None = None


def _file_payload(path: Path, size: int) -> _Payload:
    """A PDF-looking file of ``size`` random bytes on disk (setup, not timed)."""
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        head = b"%PDF-1.4\n%benchmark upload\n"
        out.write(head)
        digest.update(head)
        left = size - len(head)
        while left > 0:
            block = os.urandom(min(CHUNK, left))
            out.write(block)
            digest.update(block)
            left -= len(block)

    def chunks() -> Iterator[bytes]:
        with open(path, "rb") as source:
            while block := source.read(CHUNK):
                yield block

    return _Payload(path.name, size, digest.hexdigest(), chunks, path)


def _memory_payload(name: str, head: bytes, block: bytes) -> _Payload:
    """A small file: a unique head before a block shared by every such file."""
    view = memoryview(block)
    digest = hashlib.sha256(head)
    digest.update(view)

    def chunks() -> Iterator[bytes | memoryview]:
        yield head
        for start in range(0, len(view), CHUNK):
            yield view[start : start + CHUNK]

    return _Payload(name, len(head) + len(view), digest.hexdigest(), chunks)


@dataclass
class _Body:
    content_type: str
    length: int
    parts: Callable[[], Iterator[bytes | memoryview]]


def _multipart(csrf: str, payload: _Payload) -> _Body:
    """The portal's upload form (csrf_token, files) as a stream of parts."""
    head = (
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="csrf_token"\r\n\r\n'
        f"{csrf}\r\n"
        f"--{BOUNDARY}\r\n"
        f'Content-Disposition: form-data; name="files"; filename="{payload.name}"\r\n'
        "Content-Type: application/pdf\r\n\r\n"
    ).encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()

    def parts() -> Iterator[bytes | memoryview]:
        yield head
        yield from payload.chunks()
        yield tail

    return _Body(
        f"multipart/form-data; boundary={BOUNDARY}",
        len(head) + payload.size + len(tail),
        parts,
    )


class _Visitor:
    """One person on the portal: a keep-alive connection, cookies, a CSRF token."""

    def __init__(self, port: int, token: str):
        self.http = http.client.HTTPConnection(
            "127.0.0.1", port, timeout=REQUEST_TIMEOUT_S
        )
        self.token = token
        self.cookies: dict[str, str] = {}
        self.csrf = ""

    def close(self) -> None:
        self.http.close()

    def request(
        self, method: str, path: str, body=None, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        headers = dict(headers or {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        self.http.request(method, path, body=body, headers=headers)
        response = self.http.getresponse()
        data = response.read()
        for line in response.msg.get_all("Set-Cookie") or []:
            cookie = SimpleCookie()
            cookie.load(line)
            self.cookies.update({key: morsel.value for key, morsel in cookie.items()})
        return response.status, data

    def open_page(self) -> float:
        """GET the checklist page (keeping its CSRF token); the seconds it took."""
        start = time.perf_counter()
        status, data = self.request("GET", f"/c/{self.token}")
        elapsed = time.perf_counter() - start
        if status != 200:
            raise RuntimeError(f"GET page: HTTP {status}")
        found = _CSRF.search(data.decode("utf-8", "replace"))
        if not found:
            raise RuntimeError("no csrf_token on the portal page")
        self.csrf = found.group(1)
        return elapsed

    def post(self, path: str, body: _Body, xhr: bool = True) -> tuple[int, bytes]:
        headers = {
            "Content-Type": body.content_type,
            "Content-Length": str(body.length),
        }
        if xhr:  # as portal.js sends it: JSON back instead of a redirect
            headers["X-Requested-With"] = "XMLHttpRequest"
        return self.request("POST", path, body=body.parts(), headers=headers)

    def upload(self, item_id: int, payload: _Payload) -> None:
        status, data = self.post(
            f"/c/{self.token}/items/{item_id}/upload", _multipart(self.csrf, payload)
        )
        answer = _json(data)
        if status != 200 or not answer.get("ok"):
            raise RuntimeError(f"upload of {payload.name}: HTTP {status} {answer}")
        if any(m.get("category") != "ok" for m in answer.get("messages", [])):
            raise RuntimeError(f"upload of {payload.name}: {answer['messages']}")


def _json(data: bytes) -> dict:
    try:
        answer = json.loads(data)
    except ValueError:
        return {"body": data[:200].decode("utf-8", "replace")}
    return answer if isinstance(answer, dict) else {"body": answer}


def _raw_post(visitor: _Visitor, body: _Body) -> Path:
    """POST to the raw app; the file it wrote (checked for size)."""
    status, data = visitor.post("/upload", body, xhr=False)
    size, _sep, name = data.decode().partition(" ")
    if status != 200 or int(size) != body.length:
        raise RuntimeError(f"raw upload: HTTP {status}, {size} of {body.length} bytes")
    return Path(name)


# -- scenario 1: one large file --------------------------------------------------------


@dataclass
class _BigResult:
    size_mb: int
    raw_times: list[float]
    portal_times: list[float]
    raw_growth: int
    portal_growth: int
    raw_peak: int
    portal_peak: int

    @property
    def raw_s(self) -> float:
        return statistics.median(self.raw_times)

    @property
    def portal_s(self) -> float:
        return statistics.median(self.portal_times)


def _one_big_upload(
    bench: _Bench, payload: _Payload, position: int, repeat: int
) -> _BigResult:
    """``repeat`` uploads of ``payload`` to each of two fresh servers.

    The order alternates (raw first, then the portal first), and dirty pages are
    written out before each upload, so that neither side pays for the other's
    writeback.
    """
    raw_times, portal_times = [], []
    with contextlib.ExitStack() as stack:
        raw, portal = bench.raw_server(stack), bench.portal_server(stack)
        _warm_up(bench, raw, portal)
        raw_before, portal_before = raw.peak_rss(), portal.peak_rss()
        for index in range(repeat):
            raw_s, portal_s = _one_round(bench, raw, portal, payload, position, index)
            raw_times.append(raw_s)
            portal_times.append(portal_s)
        raw_peak, portal_peak = raw.peak_rss(), portal.peak_rss()
    return _BigResult(
        payload.size // MB,
        raw_times,
        portal_times,
        raw_peak - raw_before,
        portal_peak - portal_before,
        raw_peak,
        portal_peak,
    )


def _one_round(
    bench: _Bench,
    raw: _Server,
    portal: _Server,
    payload: _Payload,
    position: int,
    index: int,
) -> tuple[float, float]:
    """Seconds to post ``payload`` to the raw app and to client ``index``'s slot."""
    visitor, raw_visitor = (
        _Visitor(portal.port, bench.tokens[index]),
        _Visitor(raw.port, ""),
    )
    item_id = bench.items[index][position - 1]
    try:
        visitor.open_page()
        body = _multipart(visitor.csrf, payload)

        def send_raw() -> Path:
            return _raw_post(raw_visitor, body)

        def send_portal() -> None:
            visitor.upload(item_id, payload)

        seconds = {}
        for send in (send_raw, send_portal)[:: 1 if index % 2 == 0 else -1]:
            os.sync()  # start clean: no writeback left over from the other side
            start = time.perf_counter()
            written = send()
            seconds[send] = time.perf_counter() - start
            if written is not None:  # what the raw app wrote: not kept
                (bench.folder / "raw" / written).unlink()
    finally:
        visitor.close()
        raw_visitor.close()
    _check_stored(bench, item_id, payload)
    return seconds[send_raw], seconds[send_portal]


def _warm_up(bench: _Bench, raw: _Server, portal: _Server) -> str:
    """One page and one small upload each, so that lazy imports are not counted.

    Returns the CSRF token the portal gave, for bodies sent to the raw app.
    """
    block = b"%PDF-1.4\n" + os.urandom(256 * 1024)
    payload = _memory_payload("warm-up.pdf", b"", block)
    visitor, raw_visitor = (
        _Visitor(portal.port, bench.tokens[-1]),
        _Visitor(raw.port, ""),
    )
    try:
        visitor.open_page()
        visitor.upload(bench.items[-1][WARM_POSITION - 1], payload)
        written = _raw_post(raw_visitor, _multipart(visitor.csrf, payload))
        (bench.folder / "raw" / written).unlink()
        return visitor.csrf
    finally:
        visitor.close()
        raw_visitor.close()


def _check_stored(bench: _Bench, item_id: int, payload: _Payload) -> None:
    """The document row and the file on disk both carry the payload's sha256."""
    from monthlydocs.db import open_db

    db = open_db(bench.workspace.database, migrate=False)
    try:
        rows = db.conn.execute(
            "SELECT stored_path, size, sha256 FROM documents WHERE item_id = ?",
            [item_id],
        ).fetchall()
    finally:
        db.close()
    if len(rows) != 1:
        raise RuntimeError(f"item {item_id}: {len(rows)} documents, expected 1")
    stored_path, size, sha256 = rows[0]
    path = bench.files_dir / stored_path
    if (size, sha256) != (payload.size, payload.sha256) or _sha256(path) != sha256:
        raise RuntimeError(f"item {item_id}: stored file does not match what was sent")
    path.unlink()  # checked; free the disk for the next one


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        while block := source.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _report_big(report: Report, results: dict[int, _BigResult]) -> None:
    for size_mb in (BIG_MB, SMALL_BIG_MB):
        result = results[size_mb]
        raw_rate, portal_rate = size_mb / result.raw_s, size_mb / result.portal_s
        label = f"upload {size_mb} MB via serve, MB/s (raw WSGI vs portal)"
        if size_mb == BIG_MB:
            report.add(
                Line(
                    label,
                    raw_rate,
                    portal_rate,
                    goal=f">= {RATE_GOAL:g}x",
                    passed=portal_rate >= RATE_GOAL * raw_rate,
                    unit="MB/s",
                )
            )
        else:
            report.add(Line(label, raw_rate, portal_rate, unit="MB/s"))
    small, big = results[SMALL_BIG_MB], results[BIG_MB]
    report.add(
        Line(
            f"upload server VmHWM growth: {SMALL_BIG_MB} MB vs {BIG_MB} MB",
            small.portal_growth / MB,
            big.portal_growth / MB,
            goal=f"< {MEMORY_GOAL_MB} MB",
            passed=max(small.portal_growth, big.portal_growth) < MEMORY_GOAL_MB * MB,
            unit="MB",
        )
    )
    report.notes.append("")
    for result in (small, big):
        report.notes.append(
            f"Upload {result.size_mb} MB: raw {_spread(result.raw_times)}, portal "
            f"{_spread(result.portal_times)}. Server VmHWM after the uploads: raw "
            f"{result.raw_peak / MB:.1f} MB (+{result.raw_growth / MB:.1f}), portal "
            f"{result.portal_peak / MB:.1f} MB (+{result.portal_growth / MB:.1f})."
        )


def _spread(times: list[float]) -> str:
    """Median seconds, with the range when there were several runs."""
    text = f"{statistics.median(times):.2f} s"
    if len(times) > 1:
        text += f" ({min(times):.2f}-{max(times):.2f})"
    return text


# -- scenario 2: many clients at once ------------------------------------------------


def _concurrent(report: Report, bench: _Bench) -> None:
    block = os.urandom(FILE_MB * MB - 64)
    files = [
        [
            _memory_payload(
                f"client{client:02d}-file{number}.pdf",
                f"%PDF-1.4\n% client {client:02d} file {number}\n".encode().ljust(64),
                block,
            )
            for number in range(1, FILES_EACH + 1)
        ]
        for client in range(1, CONCURRENT + 1)
    ]
    total_mb = CONCURRENT * FILES_EACH * FILE_MB
    with contextlib.ExitStack() as stack:
        raw, portal = bench.raw_server(stack), bench.portal_server(stack)
        csrf = _warm_up(bench, raw, portal)
        raw_before = raw.peak_rss()
        raw_s, raw_errors = _load(bench, files, raw_port=raw.port, raw_csrf=csrf)
        raw_growth = raw.peak_rss() - raw_before
        probe = _Visitor(portal.port, bench.tokens[-1])
        stack.callback(probe.close)
        idle = [probe.open_page() for _ in range(IDLE_GETS)]
        before = portal.peak_rss()
        busy: list[float] = []
        portal_s, errors = _load(
            bench,
            files,
            portal_port=portal.port,
            probe=lambda: busy.append(probe.open_page()),
        )
        growth = portal.peak_rss() - before
    errors += raw_errors
    matched = _check_concurrent(bench, files)
    nan = float("nan")
    expected = CONCURRENT * FILES_EACH
    label = f"{CONCURRENT} clients x {FILES_EACH} files of {FILE_MB} MB"
    report.add(
        Line(
            f"{label}, MB/s (raw WSGI vs portal)",
            total_mb / raw_s,
            total_mb / portal_s,
            unit="MB/s",
        )
    )
    report.add(
        Line(
            f"{label}: stored, sha256 matching",
            expected,
            matched,
            goal="all, no error",
            passed=matched == expected and not errors,
            unit="files",
        )
    )
    report.add(
        Line(
            "portal page GET median: idle vs during those uploads",
            statistics.median(idle),
            statistics.median(busy) if busy else nan,
        )
    )
    report.notes.append(
        f"{label}: raw {raw_s:.2f} s, portal {portal_s:.2f} s; page GET during the "
        f"load: {len(busy)} samples, max {max(busy, default=nan) * 1000:.0f} ms; "
        f"server VmHWM growth during the load: raw {raw_growth / MB:.1f} MB, portal "
        f"{growth / MB:.1f} MB."
    )
    for error in errors[:5]:
        report.notes.append(f"  error: {error}")


def _load(
    bench: _Bench,
    files: list[list[_Payload]],
    *,
    portal_port: int = 0,
    raw_port: int = 0,
    raw_csrf: str = "",
    probe: Callable[[], object] | None = None,
) -> tuple[float, list[str]]:
    """Every client's files at once (one thread each); seconds and errors.

    With ``portal_port`` each client opens its page, then uploads its files to its own
    checklist; with ``raw_port`` the same bodies go to the raw app.
    """
    errors: list[str] = []
    ready = threading.Barrier(len(files) + 1, timeout=REQUEST_TIMEOUT_S)
    finished = threading.Event()

    def client(index: int, payloads: list[_Payload]) -> None:
        visitor = _Visitor(portal_port or raw_port, bench.tokens[index])
        try:
            if portal_port:
                visitor.open_page()
            else:
                visitor.csrf = raw_csrf
            ready.wait()
            item_id = bench.items[index][CONCURRENT_POSITION - 1]
            for payload in payloads:
                if portal_port:
                    visitor.upload(item_id, payload)
                else:
                    written = _raw_post(visitor, _multipart(visitor.csrf, payload))
                    (bench.folder / "raw" / written).unlink()
        except Exception as exc:  # reported, not raised: count every failure
            errors.append(f"client {index + 1}: {exc!r}")
            with contextlib.suppress(threading.BrokenBarrierError):
                ready.abort()
        finally:
            visitor.close()

    def probing() -> None:
        for _ in range(100_000):
            if finished.is_set():
                return
            try:
                probe()
            except Exception as exc:
                errors.append(f"page probe: {exc!r}")
                return
            time.sleep(0.02)

    threads = [
        threading.Thread(target=client, args=(index, payloads), daemon=True)
        for index, payloads in enumerate(files)
    ]
    for thread in threads:
        thread.start()
    with contextlib.suppress(threading.BrokenBarrierError):
        ready.wait()
    start = time.perf_counter()
    prober = threading.Thread(target=probing, daemon=True) if probe else None
    if prober:
        prober.start()
    deadline = time.monotonic() + REQUEST_TIMEOUT_S
    for thread in threads:
        thread.join(max(deadline - time.monotonic(), 0))
    elapsed = time.perf_counter() - start
    finished.set()
    if prober:
        prober.join(REQUEST_TIMEOUT_S)
    if any(thread.is_alive() for thread in threads):
        errors.append("some clients did not finish in time")
    return elapsed, errors


def _check_concurrent(bench: _Bench, files: list[list[_Payload]]) -> int:
    """Files whose documents row and bytes on disk match what was sent."""
    from monthlydocs.db import open_db

    db = open_db(bench.workspace.database, migrate=False)
    try:
        rows = db.conn.execute(
            "SELECT item_id, original_filename, stored_path, size, sha256"
            " FROM documents"
        ).fetchall()
    finally:
        db.close()
    stored = {
        (item_id, name): (path, size, sha) for item_id, name, path, size, sha in rows
    }
    matched = 0
    for index, payloads in enumerate(files):
        item_id = bench.items[index][CONCURRENT_POSITION - 1]
        for payload in payloads:
            row = stored.get((item_id, payload.name))
            if row is None or row[1:] != (payload.size, payload.sha256):
                continue
            if _sha256(bench.files_dir / row[0]) == payload.sha256:
                matched += 1
    return matched

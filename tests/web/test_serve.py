"""`monthlydocs serve` runs the portal under waitress; the access log masks tokens."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(port: int, process, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(process.stderr.read())
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("the server did not start")


def test_serve_answers_under_waitress_and_masks_tokens(case):
    script = shutil.which("monthlydocs", path=str(Path(sys.executable).parent))
    assert script, "the monthlydocs script is installed in the venv"
    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [script, "--config", str(case.settings.path), "serve", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        _wait_for(port, process)
        base = f"http://127.0.0.1:{port}"
        request = urllib.request.Request(f"{base}/c/{case.token}",
                                         headers={"Accept-Language": "de"})
        with urllib.request.urlopen(request, timeout=10) as response:
            page = response.read().decode()
            assert response.status == 200
            assert response.headers["Server"] == "monthlydocs"
        assert '<html lang="fr">' in page  # the client's language on record
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"{base}/c/{'x' * 30}", timeout=10)
        assert missing.value.code == 404
    finally:
        process.send_signal(signal.SIGINT)
        try:
            out, err = process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
    assert f"http://127.0.0.1:{port}/" in out
    assert f"GET /c/{case.token[:4]}… 200" in err
    assert "GET /c/xxxx… 404" in err
    assert case.token not in err + out
    assert case.checklist()["open_count"] == 1


def test_portal_server_module_builds_the_app_from_the_environment(case, monkeypatch):
    import importlib

    monkeypatch.setenv("MONTHLYDOCS_CONFIG", str(case.settings.path))
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2]))
    sys.modules.pop("portal_server", None)
    module = importlib.import_module("portal_server")
    try:
        response = module.app.test_client().get(f"/c/{case.token}")
        assert response.status_code == 200
    finally:
        sys.modules.pop("portal_server", None)

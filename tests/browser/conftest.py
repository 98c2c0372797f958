"""Real Chromium (Debian's package, driven by Playwright) against a real waitress server.

Without a `chromium` on PATH these tests skip and say why; when CI is set they fail
instead, because CI installs Chromium (`make browser`).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
from pathlib import Path

import pytest
from web.conftest import make_case

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]




@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    executable = shutil.which("chromium")
    if not executable:
        reason = "no `chromium` on PATH (install it with `make browser`)"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser tests: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    home = tmp_path_factory.mktemp("chromium-home")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS,
            env={**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home),
                 "XDG_CACHE_HOME": str(home)},
        )
        launched.devices = playwright.devices
        yield launched
        launched.close()


class Server:
    """The app under waitress on a free port, in a thread, for one test."""

    def __init__(self, app):
        from waitress import create_server

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.server = create_server(app, host="127.0.0.1", port=port, threads=4)
        self.url = f"http://127.0.0.1:{port}"
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.close()
        self.thread.join(timeout=5)


@pytest.fixture
def served(tmp_path):
    """(case, server): a fresh workspace with its portal served by waitress."""
    from monthlydocs.web import create_app

    def start(**options):
        case = make_case(tmp_path / f"ws{len(started)}", **options)
        server = Server(create_app(case.settings))
        started.append(server)
        return case, server

    started: list[Server] = []
    yield start
    for server in started:
        server.close()


@pytest.fixture
def screenshot():
    ARTIFACTS.mkdir(exist_ok=True)

    def take(page, name: str) -> None:
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    return take

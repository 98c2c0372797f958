"""`monthlydocs daemon`: reminders, generation and the digest on a schedule, until stopped."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    app.command("daemon")(daemon)


def daemon(ctx: typer.Context) -> None:
    """Run in the foreground: `remind` every daemon.remind_every_minutes (and once at
    start), `generate` daily at daemon.generate_at, an extra `remind` at
    notifications.digest_at for the digest. One log line per run on stdout.

    SIGTERM or Ctrl-C finishes the message in flight, then exits. Only one daemon may run
    per workspace. Use it instead of the cron lines, not with them.

    Example: monthlydocs --config /srv/firm/monthlydocs.toml daemon >> daemon.log
    """
    import os
    import signal
    import threading

    from .. import daemon as loop

    settings = ctx.find_root().obj.settings
    stop = threading.Event()

    def request_stop(signum, frame) -> None:
        # Only set the event: printing from a signal handler can hit a write in progress.
        stop.set()

    def started() -> None:
        typer.echo(
            f"monthlydocs daemon started, PID {os.getpid()}: {loop.describe(settings)}; "
            "stop with SIGTERM or Ctrl-C"
        )

    previous = {
        signum: signal.signal(signum, request_stop)
        for signum in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        loop.run_daemon(settings, stop=stop, log=typer.echo, on_ready=started)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

"""The WSGI application for any server: `gunicorn portal_server:app`.

It reads the configuration like the command does (MONTHLYDOCS_CONFIG, else
./monthlydocs.toml), and sends what requests queue (emails, webhooks) from a thread of
its own, as `monthlydocs serve` does.
"""

from monthlydocs.web import create_app

app = create_app(send_in_background=True)

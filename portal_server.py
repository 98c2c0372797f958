"""The WSGI application for any server: `gunicorn portal_server:app`.

It reads the configuration like the command does (MONTHLYDOCS_CONFIG, else
./monthlydocs.toml).
"""

from monthlydocs.web import create_app

app = create_app()

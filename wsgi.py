"""WSGI entry point for gunicorn: `gunicorn -w 4 wsgi:app`."""

from service.app import create_app

app = create_app()

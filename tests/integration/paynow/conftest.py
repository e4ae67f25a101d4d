"""Tests whose app talks to a running PayNow emulator: orders, idempotency, status sync.

`app` here replaces the suite's default app for this directory, and `client` uses it.
"""

from __future__ import annotations

import pytest

from service.app import create_app
from tests.support import make_settings


@pytest.fixture
def app(db_url, tmp_path, paynow_emulator):
    """The app, with its PayNow client pointed at the emulator."""
    application = create_app(make_settings(db_url, tmp_path, paynow_base_url=paynow_emulator))
    yield application
    application.extensions["kwit"].close()

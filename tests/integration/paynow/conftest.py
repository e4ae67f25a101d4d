"""Tests whose app talks to a running PayNow emulator: orders, idempotency, status sync.

`app` here replaces the suite's default app for this directory, and `client` uses it.
"""

from __future__ import annotations

import pytest

from emulators import paynow as paynow_emulator
from service.app import create_app
from tests.support import PAYNOW_API_KEY, PAYNOW_SIGNATURE_KEY, make_settings


@pytest.fixture
def emulator():
    """Base URL of a PayNow emulator running in a thread for this test."""
    server, base = paynow_emulator.start_in_thread(
        api_key=PAYNOW_API_KEY, signature_key=PAYNOW_SIGNATURE_KEY, notify_url=None
    )
    yield base
    server.shutdown()
    server.server_close()


@pytest.fixture
def app(db_url, tmp_path, emulator):
    """The app, with its PayNow client pointed at `emulator`."""
    application = create_app(make_settings(db_url, tmp_path, paynow_base_url=emulator))
    yield application
    application.extensions["kwit"].close()

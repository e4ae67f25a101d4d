"""Helpers and constants shared by the tests (imported by conftest.py and test modules)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from models.session import make_engine
from service.config import Settings

RUN_ID = f"{os.getpid()}_{secrets.token_hex(3)}"
TEST_FERNET_KEY = "dGVzdC1rZXktdGVzdC1rZXktdGVzdC1rZXktdGVzdC0="
STRIPE_SECRET = "whsec_test_secret"
PAYNOW_API_KEY = "97a55694-5478-43b5-b406-fb49ebfdd2b5"
PAYNOW_SIGNATURE_KEY = "b305b996-bca5-4404-a0b7-2ccea3d2b64b"
IFIRMA_USER = "demo@example.pl"
IFIRMA_KEY = "EAB0D8ACF3308F3B"


def make_settings(database_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "test",
        "database_url": database_url,
        "encryption_keys": (TEST_FERNET_KEY,),
        "stripe_webhook_secrets": (STRIPE_SECRET,),
        "paynow_api_key": PAYNOW_API_KEY,
        "paynow_signature_key": PAYNOW_SIGNATURE_KEY,
        "ifirma_user": IFIRMA_USER,
        "ifirma_invoice_key": IFIRMA_KEY,
        "ifirma_abonent_key": IFIRMA_KEY,
        "blob_dir": str(tmp_path / "blobs"),
        # Never the real providers: a closed local port unless a test starts an emulator.
        "ifirma_base_url": "http://127.0.0.1:9/iapi",
        "paynow_base_url": "http://127.0.0.1:9",
        "log_level": "INFO",
    }
    values.update(overrides)
    return Settings(**values)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def count_rows(url: str, table: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()  # noqa: S608
    finally:
        engine.dispose()


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    """The response is RFC 9457 problem+json with this status and no stack trace."""
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.content_type == "application/problem+json"
    body = response.get_json(force=True)
    assert body["status"] == status
    assert body["title"]
    assert "Traceback" not in response.get_data(as_text=True)
    return body

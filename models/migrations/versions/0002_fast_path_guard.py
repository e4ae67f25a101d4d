"""fast path guard: a function the one-statement webhook path calls to undo a partial write

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 16:10:00

The hot path (webhooks/ingest_fast.py) records a new Stripe order in one autocommitted
statement. Plain SQL cannot raise an error, so the statement calls this function when a racing
delivery left it half done; the error aborts the statement, which undoes all of its rows, and
the caller takes the locking path. PostgreSQL only: SQLite never takes the fast path.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLSTATE class "KW" is Kwit's own; webhooks/ingest_fast.py matches on this code.
_CREATE = """
CREATE OR REPLACE FUNCTION kwit_abort_partial_write() RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'fast path wrote only part of a new order; retrying on the locking path'
        USING ERRCODE = 'KW001';
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_CREATE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS kwit_abort_partial_write()")

"""payment status: NULL instead of '' for "no provider status yet"

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 09:00:00

Until now payments.status was NOT NULL and '' stood for "the provider has not reported a
status yet". The column becomes nullable and those rows become NULL.

SQLite cannot change a column's nullability, so batch mode recreates the table: copy, drop,
rename. Dropping `payments` while refunds point at it would break their foreign keys (Kwit's
engine turns them on, and they cannot be turned off inside the migration's transaction), so on
SQLite the rows are first set aside, the emptied table is recreated, and the rows go back in;
with the checks deferred to COMMIT, the refunds find their payments again by then.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    _set_nullable(True, convert="UPDATE {table} SET status = NULL WHERE status = ''")


def downgrade() -> None:
    _set_nullable(False, convert="UPDATE {table} SET status = '' WHERE status IS NULL")


def _set_nullable(nullable: bool, *, convert: str) -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if not sqlite:
        if nullable:
            _alter(nullable)
        op.execute(convert.format(table="payments"))
        if not nullable:
            _alter(nullable)
        return
    columns = ", ".join(c["name"] for c in sa.inspect(op.get_bind()).get_columns("payments"))
    op.execute("PRAGMA defer_foreign_keys = ON")  # until COMMIT, which resets it
    op.execute("CREATE TEMP TABLE payments_0003 AS SELECT * FROM payments")
    op.execute("DELETE FROM payments")
    _alter(nullable)
    op.execute(convert.format(table="payments_0003"))
    op.execute(f"INSERT INTO payments ({columns}) SELECT {columns} FROM payments_0003")  # noqa: S608
    op.execute("DROP TABLE payments_0003")


def _alter(nullable: bool) -> None:
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.alter_column("status", existing_type=sa.String(length=24), nullable=nullable)

"""GDPR access and portability (art. 15 and 20): everything linked to one ``customer_ref``.

``export`` answers with the orders of a customer_ref and their payments, refunds, invoices and
webhook events as JSON-ready data; billing data still held is decrypted into it. Each record
carries its retention basis (code and text), ``retain_until`` and restriction
(docs/retention-law.md §5.4). The lookup helpers here are shared with ``compliance.subject_erase``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from compliance.retention import RetentionEngine
from compliance.tags import linked_records
from models import CustomerStub, Order
from models.vault import Vault, VaultError

__all__ = ["UnknownSubject", "basis_describer", "export", "iso", "subject_orders"]


class UnknownSubject(LookupError):
    """Nothing is known about this customer_ref."""


Describe = Callable[[str | None], str | None]
# Columns exported per record kind: identifiers, amounts, states and dates (art. 15(1), 20).
_COLUMNS = {
    "order": (
        "id external_ref provider status buyer_type currency gross_minor items created_at "
        "updated_at"
    ),
    "payment": "id provider provider_payment_id status amount_minor currency paid_at",
    "refund": "id payment_id provider_refund_id status amount_minor currency completed_at",
    "invoice": (
        "id kind state number ksef_number ifirma_id corrects_invoice_id issue_date sale_date "
        "gross_minor currency totals buyer_nip pdf_sha256"
    ),
    "webhook_event": "id provider event_key event_type outcome received_at",
    "customer_stub": "customer_ref buyer_type erased_at restriction_reason",
}


def export(
    session: Session, vault: Vault, customer_ref: str, *, engine: RetentionEngine | None = None
) -> dict[str, Any]:
    """Everything linked to ``customer_ref`` as JSON-ready data (GDPR art. 15, 20).

    Each record carries its retention basis (code and text), retain_until and restriction.
    Raises ``UnknownSubject`` when there is no order and no stub for it.
    """
    describe = basis_describer(engine or RetentionEngine())
    orders = subject_orders(session, customer_ref)
    stub = session.get(CustomerStub, customer_ref)
    if not orders and stub is None:
        raise UnknownSubject(customer_ref)
    out = []
    for order in orders:
        payments, refunds, invoices, events = linked_records(session, order)
        view = _view("order", order, describe)
        view["billing"] = _billing(vault, order.billing)
        view["payments"] = [_view("payment", p, describe) for p in payments]
        view["refunds"] = [_view("refund", r, describe) for r in refunds]
        view["invoices"] = [_view("invoice", i, describe) for i in invoices]
        view["webhook_events"] = [_view("webhook_event", e, describe) for e in events]
        out.append(view)
    return {
        "customer_ref": customer_ref,
        "format": "kwit-subject-export/1",
        "restricted": stub is not None or any(o.restricted_at for o in orders),
        "customer_stub": _view("customer_stub", stub, describe) if stub else None,
        "orders": out,
    }


def _view(kind: str, row: Any, describe: Describe) -> dict[str, Any]:
    view = {col: _json(getattr(row, col)) for col in _COLUMNS[kind].split()}
    view["retention_basis"] = row.retention_basis
    view["retention_basis_text"] = describe(row.retention_basis)
    view["retain_until"] = _json(row.retain_until)
    if kind != "customer_stub":
        view["restricted"] = row.restricted_at is not None
        view["restricted_at"] = _json(row.restricted_at)
        view["restriction_reason"] = row.restriction_reason
    return view


def _billing(vault: Vault, token: bytes | None) -> Any:
    if token is None:
        return None
    try:
        return vault.decrypt(token)
    except VaultError:
        return {"error": "held encrypted, but not decryptable with the configured keys"}


def _json(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value.value if isinstance(value, enum.Enum) else value


def subject_orders(session: Session, customer_ref: str) -> list[Order]:
    """The orders of ``customer_ref``, oldest first."""
    stmt = sa.select(Order).where(Order.customer_ref == customer_ref)
    return list(session.scalars(stmt.order_by(Order.created_at, Order.id)))


def basis_describer(engine: RetentionEngine) -> Describe:
    """A function from a stored basis code (or None) to its text; None when unknown."""

    def describe(code: str | None) -> str | None:
        if not code:
            return None
        try:
            return engine.describe(code)
        except KeyError:
            return None

    return describe


def iso(value: date | datetime | None) -> str | None:
    """ISO 8601 text of a date or timestamp; None stays None."""
    return value.isoformat() if value is not None else None

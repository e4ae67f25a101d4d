"""POST /v1/invoices/{id}/retry: re-queue a failed or unknown invoice after a human looked."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from invoicing import outbox
from models import Invoice, InvoiceState, Order, OutboxKind, Role, utcnow
from service.api.invoices import InvoiceSchema, held_invoice_ids, invoice_view
from service.auth import require_role
from service.db import get_session, runtime
from service.errors import ApiError
from service.worker import dispatch

bp = Blueprint("invoice_admin", __name__, url_prefix="/v1", description="Invoice operations")


@bp.post("/invoices/<string:invoice_id>/retry")
@bp.response(202, InvoiceSchema)
@bp.doc(security=[{"ApiKey": []}])
@require_role(Role.ADMIN)
def retry_invoice(invoice_id: str) -> dict[str, Any]:
    """Try a `failed` or `unknown` invoice again.

    A failed invoice (iFirma refused it) is rebuilt from the order's current data, so a fix
    made since is picked up. An unknown one (reconciliation was ambiguous) is reconciled again
    first: it is only posted when iFirma holds no invoice for the order.
    """
    session = get_session()
    invoice = session.get(Invoice, invoice_id, with_for_update=True)
    if invoice is None:
        raise ApiError(404, f"No invoice {invoice_id!r}.")
    if invoice.state not in (InvoiceState.FAILED, InvoiceState.UNKNOWN):
        raise ApiError(
            409,
            f"Only failed or unknown invoices can be retried; this one is {invoice.state.value}.",
        )
    now = utcnow()
    if invoice.state is InvoiceState.FAILED:
        order = session.get(Order, invoice.order_id)
        invoice.state = InvoiceState.PENDING
        if order is not None and order.billing is not None:
            invoice.payload_encrypted = None  # rebuild from the (possibly fixed) order data
    else:
        invoice.state = InvoiceState.CALLING  # reconcile before anything is posted again
    invoice.updated_at = now
    item = outbox.requeue(session, kind=OutboxKind.ISSUE_INVOICE, ref_id=invoice.id, now=now)
    session.commit()
    dispatch(runtime(), item.id)
    session.refresh(invoice)
    return invoice_view(invoice, held=bool(held_invoice_ids(session, [invoice])))

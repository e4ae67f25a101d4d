"""GDPR erasure (art. 17) for one ``customer_ref``: erase what may go, restrict what must stay.

``erase`` follows the procedure of docs/retention-law.md §5.6: delete what no rule requires,
keep and restrict what a legal obligation (art. 17(3)(b)) or legal claims (art. 17(3)(e)) still
require, leave invoice content untouched (VAT Act art. 112a integrity), leave logs to their own
rolling windows, keep a pseudonymous stub as long as anything is retained, and say per record
what was done, on which basis and until when.

Erasure decisions:

- Legal holds suspend deletion (``compliance.holds``): a held record is restricted, never
  deleted.
- Invoices are never deleted here. One whose period is over is restricted and left to the next
  retention run, which also removes its PDF.
- Buyer billing data (the order's encrypted ``billing``) stays while the order is paid and its
  sale invoice is not issued yet: the invoice still has to be made out (VAT Act art. 106b).
  The answer says so. Otherwise it is erased, as is the encrypted iFirma request copy of an
  issued invoice (the invoice itself keeps its content).
- An order with no paid payment, no invoice and no refund has no retention basis: it is
  deleted with its payments and webhook events.
- A tenant retention policy stops counting (see ``compliance.tags``): only statutory
  periods justify keeping data against an erasure request (docs/retention-law.md §5.2).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from compliance.holds import RecordRef, active_holds, held_by, invoice_ref
from compliance.purge_plan import anonymise_order
from compliance.restriction import LOG_WINDOW_REASON, clip, restriction_reason
from compliance.retention import Retention, RetentionEngine
from compliance.subject_export import UnknownSubject, basis_describer, iso, subject_orders
from compliance.tags import STUB_CODE, linked_records, retag_order
from models import (
    CustomerStub,
    Invoice,
    InvoiceKind,
    InvoiceState,
    Order,
    Payment,
    Refund,
    RefundStatus,
    WebhookEvent,
)
from models.vault import Vault

__all__ = ["BILLING_KEPT", "erase"]

BILLING_KEPT = "kept until the invoice is issued"
_PENDING_INVOICE = (
    "GDPR art. 17(3)(b): the invoice for this paid order is still to be issued (VAT Act "
    "art. 106b); its retention period starts when it is issued"
)
_REFUND_PENDING = (
    "GDPR art. 17(3)(e): refund in progress; its retention period starts when it completes"
)
_STUB_REASON = (
    "GDPR art. 17(3)(b),(e) + art. 18: pseudonymous stub, restricted, kept while linked "
    "records are retained"
)


def erase(
    session: Session, vault: Vault, engine: RetentionEngine, customer_ref: str, *, now: datetime
) -> dict[str, Any]:
    """Erase what may be erased for ``customer_ref``, restrict the rest, report per record.

    Flushes; the caller commits. ``vault`` is accepted for symmetry with ``export`` (billing is
    erased without decrypting it). Raises ``UnknownSubject`` for an unknown customer_ref.
    """
    del vault
    orders = subject_orders(session, customer_ref)
    stub = session.get(CustomerStub, customer_ref)
    if not orders and stub is None:
        raise UnknownSubject(customer_ref)
    eraser = _Eraser(session, engine, now, held_by(active_holds(session)))
    for order in orders:
        eraser.order(order)
    stub_entry = eraser.stub(customer_ref, stub, orders)
    session.flush()
    records = eraser.records
    summary = {a: sum(r["action"] == a for r in records) for a in ("deleted", "restricted", "kept")}
    return {
        "customer_ref": customer_ref,
        "erased_at": iso(now),
        "summary": summary,
        "customer_stub": stub_entry,
        "records": records,
    }


class _Eraser:
    """One erasure request: decides per record and collects the report lines."""

    def __init__(
        self,
        session: Session,
        engine: RetentionEngine,
        now: datetime,
        held: Callable[[RecordRef], bool],
    ) -> None:
        self.s, self.engine, self.now, self.held = session, engine, now, held
        self.today = now.astimezone(UTC).date()
        self.records: list[dict[str, Any]] = []
        self.retained: list[tuple[str, date | None]] = []  # (kind, retain_until) for the stub

    def order(self, order: Order) -> None:
        if order.restricted_at is None:
            order.restricted_at = self.now  # before retag: statutory rules only from now on
        retag_order(self.s, self.engine, order.id)
        payments, refunds, invoices, events = linked_records(self.s, order)
        sale = next((i.id for i in invoices if i.kind == InvoiceKind.SALE), None)

        def ref(kind: str, row: Any) -> RecordRef:
            return RecordRef(kind, row.id, row.retain_until, order.customer_ref, order.id, sale)

        for inv in invoices:
            r = invoice_ref(
                inv.id,
                inv.kind,
                inv.retain_until,
                order_id=order.id,
                customer_ref=order.customer_ref,
                corrects_invoice_id=inv.corrects_invoice_id,
                sale_invoice_id=sale,
            )
            if inv.state == InvoiceState.ISSUED:
                inv.payload_encrypted = None  # our request copy with buyer data, not the invoice
            self._keep(r.kind, inv, r)
        cited = {i.refund_id for i in invoices if i.refund_id}
        gone_refunds = set()
        for rf in refunds:
            dead = rf.status in (RefundStatus.FAILED, RefundStatus.CANCELLED) or self._over(rf)
            if dead and rf.id not in cited and not self.held(ref("refund", rf)):
                why = "refund failed or cancelled" if not rf.retain_until else self._ended(rf)
                self._delete(Refund, "refund", rf, why)
                gone_refunds.add(rf.id)
            else:
                self._keep("refund", rf, ref("refund", rf), _REFUND_PENDING)
        alive_refunds = [r for r in refunds if r.id not in gone_refunds]
        kept_payments = 0
        for p in payments:
            dead = p.paid_at is None or self._over(p)
            cited_by_refund = any(r.payment_id == p.id for r in alive_refunds)
            if dead and not cited_by_refund and not self.held(ref("payment", p)):
                why = (
                    "payment never completed: no retention duty"
                    if p.paid_at is None
                    else self._ended(p)
                )
                self._delete(Payment, "payment", p, why)
            else:
                kept_payments += 1
                self._keep("payment", p, ref("payment", p))
        children = bool(invoices or alive_refunds or kept_payments)
        order_ref = ref("order", order)
        if (
            not children
            and not self.held(order_ref)
            and (order.retain_until is None or self._over(order))
        ):
            for ev in events:
                if self.held(ref("webhook_event", ev)):
                    self._keep("webhook_event", ev, ref("webhook_event", ev))
                else:
                    self._delete(WebhookEvent, "webhook_event", ev, "event of an erased order")
            why = "no payment, no invoice: no retention duty (GDPR art. 17(1))"
            self._delete(
                Order, "order", order, why if order.retain_until is None else self._ended(order)
            )
            return
        self._order_kept(order, payments, invoices, order_ref)
        for ev in events:
            self._event(ev, ref("webhook_event", ev))

    def _order_kept(
        self, order: Order, payments: list[Payment], invoices: list[Invoice], order_ref: RecordRef
    ) -> None:
        paid = any(p.paid_at is not None for p in payments)
        issued = any(
            i.kind == InvoiceKind.SALE and i.state == InvoiceState.ISSUED for i in invoices
        )
        if paid and not issued:
            billing = BILLING_KEPT if order.billing is not None else "none held"
        else:
            billing = "erased" if order.billing is not None else "none held"
            order.billing = None
        order.continue_url = None
        reason = None
        if self._over(order) and not self.held(order_ref):
            anonymise_order(order)  # its own period is over; kept only as the parent row
            reason = "GDPR art. 17(3)(b): anonymised; kept only as the parent of retained records"
        entry = self._keep("order", order, order_ref, reason=reason)
        entry["billing"] = billing

    def _event(self, ev: WebhookEvent, r: RecordRef) -> None:
        if self.held(r) or (ev.retention_basis and "LINKED_PAYMENT" in ev.retention_basis):
            self._keep("webhook_event", ev, r)
        elif ev.retain_until is None or self._over(ev):
            self._delete(WebhookEvent, "webhook_event", ev, "log window over (GDPR art. 5(1)(e))")
        else:
            # Logs keep their short rolling window, never extended by the request
            # (retention-law.md §5.6); the row also lets a redelivered webhook be recognised
            # as a duplicate.
            ev.restricted_at = ev.restricted_at or self.now
            ev.restriction_reason = LOG_WINDOW_REASON
            self.records.append(self._entry("webhook_event", ev, "kept", ev.restriction_reason))

    def _keep(
        self, kind: str, row: Any, r: RecordRef, pending: str = "", reason: str | None = None
    ) -> dict[str, Any]:
        if self.held(r):
            reason = "legal hold (deletion suspended, docs/retention-law.md §2.7)"
        elif reason is None and self._over(row):
            reason = f"retention ended {row.retain_until}; removed by the next retention run"
        elif reason is None and row.retain_until is None:
            reason = _PENDING_INVOICE if kind in ("invoice", "correction_invoice") else pending
        reason = clip(reason or restriction_reason(self.engine, row.retention_basis))
        row.restricted_at = row.restricted_at or self.now
        row.restriction_reason = reason
        if kind != "webhook_event":
            self.retained.append((kind, row.retain_until))
        entry = self._entry(kind, row, "restricted", reason)
        self.records.append(entry)
        return entry

    def _delete(self, model: Any, kind: str, row: Any, reason: str) -> None:
        self.records.append(self._entry(kind, row, "deleted", reason))
        self.s.execute(
            sa.delete(model).where(model.id == row.id),
            execution_options={"synchronize_session": "fetch"},
        )

    def _entry(self, kind: str, row: Any, action: str, reason: str) -> dict[str, Any]:
        code = row.retention_basis
        return {
            "kind": kind,
            "id": row.id,
            "action": action,
            "basis": code,
            "basis_text": basis_describer(self.engine)(code),
            "retain_until": iso(row.retain_until),
            "reason": reason,
        }

    def _over(self, row: Any) -> bool:
        return row.retain_until is not None and self.today > row.retain_until

    def _ended(self, row: Any) -> str:
        return f"retention ended {row.retain_until} (GDPR art. 17(1))"

    def stub(
        self, customer_ref: str, stub: CustomerStub | None, orders: list[Order]
    ) -> dict[str, Any] | None:
        """A pseudonymous stub while anything is retained, else none (retention-law.md §5.6)."""
        dated = [
            Retention("", "", until, (), kind) for kind, until in self.retained if until is not None
        ]
        undated = any(until is None for _kind, until in self.retained)
        result = self.engine.customer_stub(erased_at=self.today, linked=dated)
        if result.code != STUB_CODE and not undated:
            if stub is not None:
                self.s.delete(stub)
            return None
        if stub is None:
            stub = CustomerStub(customer_ref=customer_ref, erased_at=self.now)
            self.s.add(stub)
        types = {o.buyer_type for o in orders}
        stub.buyer_type = types.pop() if len(types) == 1 else stub.buyer_type
        stub.restriction_reason = _STUB_REASON
        stub.retention_basis = STUB_CODE
        # Undated links (an invoice still to be issued) extend the stub through retag_order.
        stub.retain_until = result.until if result.code == STUB_CODE else None
        return {
            "kind": "customer_stub",
            "id": customer_ref,
            "action": "restricted",
            "basis": STUB_CODE,
            "basis_text": self.engine.describe(STUB_CODE),
            "retain_until": iso(stub.retain_until),
            "reason": _STUB_REASON,
        }

"""docs/retention.md: the generated rule table, how to change it, and the operator notes.

``render_retention_doc`` is what `kwit retention table -o docs/retention.md` writes; a test
keeps the committed file equal to it for the PL default. The statutes behind the table are
explained in docs/retention-law.md.
"""

from __future__ import annotations

from compliance.retention import RetentionEngine

__all__ = ["OPERATOR_NOTES", "render_retention_doc"]


def render_retention_doc(engine: RetentionEngine) -> str:
    """docs/retention.md: the generated rule table, how to change it, and operator notes."""
    return engine.render_table_markdown() + "\n" + OPERATOR_NOTES


OPERATOR_NOTES = """\
## How to change it

The table above is generated from the code (`kwit retention table -o docs/retention.md`) for the
configured preset and policy, so it cannot drift from what the purge does.

- `KWIT_RETENTION_PROFILE`: `PL` (default), `DE` or `generic`.
- `KWIT_INCOME_TAX_OVERLAY`: `true` (default) keeps PL invoices, payments and refunds to the
  end of tax year + 6 (Tax Ordinance art. 86 §1 + art. 70 §1). Switch it off only on your tax
  adviser's word.
- `KWIT_RETENTION_POLICY_FILE`: a JSON file that lengthens statutory periods or replaces the log
  periods. Kwit refuses to start when a policy would shorten a statutory period
  (invoice, correction_invoice, order, payment, refund). Log periods (audit_log,
  login_attempt, webhook_event) have no statutory minimum and may be shortened.

Example: keep orders and payments 7 years after the end of their year, access logs 60 days:

```json
{
  "version": 1,
  "rules": {
    "order":     {"eoy_years": 7, "basis": "contract evidence 7 years"},
    "payment":   {"eoy_years": 7, "basis": "contract evidence 7 years"},
    "audit_log": {"days": 60, "basis": "access logs 60 days"}
  }
}
```

`{"eoy_years": N}` keeps a record until 31 December of (anchor year + N); `{"days": N}` until
anchor + N days. Regenerate this file after changing the policy and review the diff.
Existing rows keep the tag they were given; orders are re-tagged when a payment, an invoice or a
refund changes them.

## Purge (`kwit retention run`)

Runs daily in the worker (when `KWIT_RETENTION_DAILY` is on) or by hand:

```
kwit retention run --dry-run                  # counts only, changes nothing
kwit retention run                            # purge what expired before today
kwit retention run --as-of 2033-01-01 --dry-run
```

A record is kept through its `retain_until` day and purged from the day after. Each run writes
one audit_log entry (`retention.run` or `retention.dry_run`) with the counts per kind. Running
it twice deletes nothing more.

What it does with an expired record that is not on legal hold:

- **Deleted**: audit log lines, login attempts, webhook events, customer stubs; invoices and
  correction invoices together with their PDF (the PDF is removed after the database commit);
  refunds, payments and orders once nothing still retained refers to them (a sale invoice goes
  after its corrections, a payment after its refunds, an order after its invoices, payments
  and refunds).
- **Anonymised**: an expired order that a retained invoice, payment or refund still refers to.
  Ids, external_ref, customer_ref, amounts, currency, status, buyer type and dates stay; the
  encrypted billing data and continue_url are dropped and item names become
  `(removed: retention period ended)` (quantities, prices and VAT rates stay; the issued
  invoice keeps the real lines). A later run deletes the order when its children are gone.
- **Kept (referenced)**: any other expired row that a retained row still refers to.
- Rows without `retain_until` (unpaid payments, invoices not issued yet) are never purged.

## Legal holds

A hold suspends deletion whatever the dates (Tax Ordinance art. 70 §2-§6: tax audit, criminal
fiscal proceedings, court complaint, enforcement; civil disputes, Civil Code art. 123; see
[retention-law.md](retention-law.md) §2.7).
Admin API:

- `POST /v1/legal-holds` with `{"scope": "customer_ref|order|invoice|all", "value": "...",
  "reason": "...", "reference": "..."}` (`value` is omitted for `all`). An `order` hold covers
  the order and its payments, refunds, invoices and events; an `invoice` hold covers the
  invoice, its corrections and the order's payments and refunds.
- `GET /v1/legal-holds` lists active holds (`?include_released=true` for all).
- `DELETE /v1/legal-holds/{id}` releases a hold (409 if it was already released). Its records
  become eligible again by their own `retain_until`. After an art. 70 §4 restart, re-tag the
  records with the new date before releasing.

Held rows are counted as "held (skipped)" by the purge and restricted, never deleted, by an
erasure.

## GDPR requests (admin API)

- `GET /v1/subjects/{customer_ref}/export`: everything linked to the customer_ref as JSON
  (orders with items and amounts, decrypted billing data still held, payments, refunds,
  invoices with numbers and KSeF numbers, webhook events), each record with its basis, basis
  text, `retain_until` and restriction. Audit action `subject.export`.
- `POST /v1/subjects/{customer_ref}/erase` ([retention-law.md](retention-law.md) §5.6):
  deletes what no rule requires
  (orders never paid or invoiced, with their payments and events; payments that never
  completed; failed refunds), keeps and restricts the rest with its GDPR art. 17(3)(b)
  (legal obligation) or 17(3)(e) (legal claims) ground, erases billing data once no invoice
  can still be needed (a paid order waiting for its invoice keeps it, and the answer says
  `"billing": "kept until the invoice is issued"`), leaves webhook events to their 90-day
  window, and keeps a pseudonymous customer stub until the last retained record expires.
  Invoices and their PDFs are never changed. After the request an internal retention policy
  no longer counts for that customer's records: only statutory periods do. Audit action
  `subject.erase`. The answer lists every record with `action` (deleted, restricted, kept),
  `basis`, `basis_text`, `retain_until` and `reason`.
"""

"""State, fault switches and notification delivery of the PayNow emulator."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import requests

from emulators.paynow_sign import new_id, notification_signature

WARSAW = ZoneInfo("Europe/Warsaw")
REFUND_STATUSES = ("NEW", "PENDING", "SUCCESSFUL", "FAILED", "CANCELLED")
_REFUND_NEXT = {"NEW": "PENDING", "PENDING": "SUCCESSFUL"}


class ApiError(Exception):
    """Answered as PayNow's error envelope with this HTTP status."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message

    def envelope(self) -> dict[str, Any]:
        """The body PayNow sends for an error."""
        return {
            "statusCode": self.status,
            "errors": [{"errorType": self.error_type, "message": self.message}],
        }


@dataclass
class Faults:
    """Switches set by POST /__emulator__/faults."""

    duplicate_notifications: int = 0  # extra copies of each notification
    reorder_notifications: bool = False  # deliver one action's notifications newest first
    notify: bool = True  # False: record notifications but send none
    lose_create_response: int = 0  # create, then answer 500, for the next N payment creates
    fail_n: int = 0  # answer 503 to the next N /v3 calls before doing anything
    refund_auto_advance: bool = True  # each refund-status GET moves NEW→PENDING→SUCCESSFUL
    insufficient_balance: bool = False  # refunds fail with INSUFFICIENT_BALANCE_FUNDS
    pretty_notifications: bool = False  # 4-space indented bodies, like the docs' curl example
    async_notifications: bool = False  # deliver from a background thread, after the answer

    def update(self, changes: Mapping[str, Any]) -> None:
        """Apply a faults request; a wrong name or type raises ValueError before any change."""
        if changes.get("reset"):
            for f in fields(self):
                setattr(self, f.name, f.default)
        known = {f.name: type(f.default) for f in fields(self)}
        for name, value in changes.items():
            if name == "reset":
                continue
            kind = known.get(name)
            if kind is None or type(value) is not kind or (kind is int and value < 0):
                raise ValueError(f"bad fault switch {name}={value!r}")
        for name, value in changes.items():
            if name != "reset":
                setattr(self, name, value)


@dataclass
class Refund:
    id: str
    payment_id: str
    amount: int
    reason: str | None
    status: str = "NEW"
    failure_reason: str | None = None

    def public(self) -> dict[str, Any]:
        """The refund as /__emulator__/state shows it."""
        return {
            "id": self.id,
            "amount": self.amount,
            "reason": self.reason,
            "status": self.status,
            "failureReason": self.failure_reason,
        }


@dataclass
class Payment:
    id: str
    external_id: str
    amount: int
    currency: str
    description: str
    continue_url: str | None
    status: str = "NEW"
    modified_at: datetime | None = None  # naive Europe/Warsaw wall time
    refunds: list[Refund] = field(default_factory=list)

    def refundable(self) -> int:
        """Amount still refundable: cancelled and failed refunds give their money back."""
        used = sum(r.amount for r in self.refunds if r.status not in ("CANCELLED", "FAILED"))
        return self.amount - used


@dataclass
class Notification:
    payment_id: str
    status: str
    modified_at: str
    body: bytes
    deliveries: list[int | str] = field(default_factory=list)


class EmulatorState:
    """Everything the emulator knows; one lock, never held while doing HTTP."""

    def __init__(
        self,
        *,
        signature_key: str,
        notify_url: str | None,
        clock: Callable[[], datetime],
        notify_timeout: tuple[float, float],
    ) -> None:
        self.signature_key = signature_key
        self.notify_url = notify_url
        self.clock = clock
        self.notify_timeout = notify_timeout
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        """Forget payments, refunds, keys, notifications and faults."""
        with self.lock:
            self.faults = Faults()
            self.payments: dict[str, Payment] = {}
            self.refunds: dict[str, Refund] = {}
            self.idempotency: dict[tuple[str, str], tuple[bytes, int, dict[str, Any]]] = {}
            self.notifications: list[Notification] = []
            self.counts: dict[str, int] = dict.fromkeys(
                ("api_requests", "auth_failures", "injected_failures", "lost_create_responses",
                 "idempotent_replays", "deliveries"), 0)  # fmt: skip

    def bump(self, name: str) -> None:
        """Count one event."""
        with self.lock:
            self.counts[name] = self.counts.get(name, 0) + 1

    def take(self, switch: str) -> bool:
        """Consume one unit of a counting fault (fail_n, lose_create_response)."""
        with self.lock:
            left = getattr(self.faults, switch)
            if left <= 0:
                return False
            setattr(self.faults, switch, left - 1)
            return True

    def idempotent(
        self, scope: str, key: str, raw: bytes, create: Callable[[], tuple[int, dict[str, Any]]]
    ) -> tuple[int, dict[str, Any]]:
        """Run ``create`` once per (scope, key); a repeat with the same body replays its answer."""
        with self.lock:
            seen = self.idempotency.get((scope, key))
            if seen is not None:
                if seen[0] != raw:
                    raise ApiError(409, "CONFLICT", "Idempotency-Key reused with another body")
                self.counts["idempotent_replays"] += 1
                return seen[1], seen[2]
            status, payload = create()
            self.idempotency[(scope, key)] = (raw, status, payload)
            return status, payload

    def payment(self, payment_id: str) -> Payment:
        """Look up a payment or raise NOT_FOUND."""
        found = self.payments.get(payment_id)
        if found is None:
            raise ApiError(404, "NOT_FOUND", f"payment {payment_id} not found")
        return found

    def refund(self, refund_id: str) -> Refund:
        """Look up a refund or raise NOT_FOUND."""
        found = self.refunds.get(refund_id)
        if found is None:
            raise ApiError(404, "NOT_FOUND", f"refund {refund_id} not found")
        return found

    def add_payment(self, **data: Any) -> Payment:
        """Store a new NEW payment (no notification: PayNow's NEW is the create answer)."""
        with self.lock:
            payment = Payment(id=new_id(), **data)
            payment.modified_at = self._next_time(payment)
            self.payments[payment.id] = payment
            return payment

    def move(self, payment_id: str, statuses: Iterable[str]) -> list[Notification]:
        """Put a payment through ``statuses`` in order; one notification per change."""
        with self.lock:
            payment = self.payment(payment_id)
            batch = []
            for status in statuses:
                payment.status = status
                payment.modified_at = self._next_time(payment)
                batch.append(self._notification(payment))
            self.notifications.extend(batch)
            return batch

    def add_refund(self, payment_id: str, amount: int, reason: str | None) -> Refund:
        """Accept a refund request, enforcing PayNow's rules."""
        with self.lock:
            payment = self.payment(payment_id)
            if payment.status != "CONFIRMED":
                raise ApiError(400, "VALIDATION_ERROR", "payment: refunds need a CONFIRMED payment")
            if self.faults.insufficient_balance:
                raise ApiError(400, "INSUFFICIENT_BALANCE_FUNDS", "insufficient balance funds")
            if amount > payment.refundable():
                raise ApiError(400, "VALIDATION_ERROR", "amount: exceeds the refundable amount")
            refund = Refund(id=new_id(), payment_id=payment_id, amount=amount, reason=reason)
            payment.refunds.append(refund)
            self.refunds[refund.id] = refund
            return refund

    def poll_refund(self, refund_id: str) -> Refund:
        """Refund status read: advances one step first when refund_auto_advance is on."""
        with self.lock:
            refund = self.refund(refund_id)
            if self.faults.refund_auto_advance and refund.status in _REFUND_NEXT:
                refund.status = _REFUND_NEXT[refund.status]
            return refund

    def advance_refund(
        self, refund_id: str, status: str | None = None, failure_reason: str | None = None
    ) -> Refund:
        """Force a refund forward one step, or to ``status``."""
        with self.lock:
            refund = self.refund(refund_id)
            target = status or _REFUND_NEXT.get(refund.status)
            if target not in REFUND_STATUSES:
                raise ApiError(400, "VALIDATION_ERROR", f"status: cannot advance to {target}")
            refund.status = target
            refund.failure_reason = failure_reason if target == "FAILED" else None
            return refund

    def cancel_refund(self, refund_id: str) -> None:
        """Only NEW (awaiting) refunds can be cancelled."""
        with self.lock:
            refund = self.refund(refund_id)
            if refund.status != "NEW":
                raise ApiError(409, "CONFLICT", f"refund is {refund.status}, only NEW can cancel")
            refund.status = "CANCELLED"

    def snapshot(self) -> dict[str, Any]:
        """The JSON answered by GET /__emulator__/state."""
        with self.lock:
            payments = [
                {
                    "id": p.id,
                    "externalId": p.external_id,
                    "amount": p.amount,
                    "currency": p.currency,
                    "status": p.status,
                    "modifiedAt": _fmt(p.modified_at),
                    "refunds": [r.public() for r in p.refunds],
                }
                for p in self.payments.values()
            ]
            notes = [
                {
                    "paymentId": n.payment_id,
                    "status": n.status,
                    "modifiedAt": n.modified_at,
                    "deliveries": list(n.deliveries),
                }
                for n in self.notifications
            ]
            counts = dict(self.counts, payments=len(self.payments), refunds=len(self.refunds))
            counts["notifications"] = len(self.notifications)
            return {
                "payments": payments,
                "notifications": notes,
                "counts": counts,
                "faults": asdict(self.faults),
            }

    def deliver(self, batch: list[Notification]) -> None:
        """Send a batch to notify_url as the fault switches say (call without the lock)."""
        with self.lock:
            faults = Faults(**asdict(self.faults))
        if not faults.notify or not self.notify_url or not batch:
            return
        ordered = list(reversed(batch)) if faults.reorder_notifications else list(batch)
        plan = [n for n in ordered for _ in range(1 + faults.duplicate_notifications)]
        if faults.async_notifications:
            threading.Thread(target=self._send_all, args=(plan,), daemon=True).start()
        else:
            self._send_all(plan)

    def failed_notifications(self) -> list[Notification]:
        """Notifications never answered with 2xx (unsent, refused, or unreachable)."""
        with self.lock:
            return [n for n in self.notifications if not any(_ok(d) for d in n.deliveries)]

    def _send_all(self, plan: list[Notification]) -> None:
        for note in plan:
            headers = {
                "Content-Type": "application/json",
                "Signature": notification_signature(self.signature_key, note.body),
                "User-Agent": "paynow-emulator",
            }
            try:
                answer = requests.post(
                    self.notify_url,  # type: ignore[arg-type]
                    data=note.body,
                    headers=headers,
                    timeout=self.notify_timeout,
                )
                outcome: int | str = answer.status_code
                answer.close()
            except requests.RequestException as exc:
                outcome = f"error:{type(exc).__name__}"
            with self.lock:
                note.deliveries.append(outcome)
                self.counts["deliveries"] += 1

    def _next_time(self, payment: Payment) -> datetime:
        # Whole seconds, Warsaw wall time, strictly increasing per payment even within a second.
        now = self.clock().astimezone(WARSAW).replace(tzinfo=None, microsecond=0)
        if payment.modified_at is not None and now <= payment.modified_at:
            now = payment.modified_at + timedelta(seconds=1)
        return now

    def _notification(self, payment: Payment) -> Notification:
        data = {
            "paymentId": payment.id,
            "externalId": payment.external_id,
            "status": payment.status,
            "modifiedAt": _fmt(payment.modified_at),
        }
        indent = 4 if self.faults.pretty_notifications else None
        separators = None if indent else (",", ":")
        text = json.dumps(data, ensure_ascii=False, indent=indent, separators=separators)
        return Notification(payment.id, payment.status, data["modifiedAt"], text.encode("utf-8"))


def utc_now() -> datetime:
    """Default clock."""
    return datetime.now(UTC)


def _fmt(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S") if moment else ""


def _ok(outcome: int | str) -> bool:
    return isinstance(outcome, int) and 200 <= outcome < 300

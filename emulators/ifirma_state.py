"""In-memory state of the fake iFirma: documents, numbering, KSeF lifecycle and fault rules.

Every public method expects the caller to hold ``State.lock`` (the Flask app takes it once per
request), so a threaded server never sees half-written numbering or double-consumed faults.

Fault modes for ``POST /__emulator__/faults`` (optional everywhere: ``route`` = substring of the
path, ``method``, ``n`` = how many times, ``rate`` = probability with an optional ``seed``):

- ``{"mode": "fail_n", "n": 3}`` (alias ``http_500_before_commit``): HTTP 500, nothing stored.
- ``{"mode": "kod_201", "message": "…"}`` / ``{"mode": "kod_100"}``: that envelope, nothing stored.
- ``{"mode": "error_after_create", "n": 1}``: store, then answer HTTP 500.
- ``{"mode": "lose_response", "rate": 0.1}``: store, then shut the TCP socket down so the client
  gets no HTTP response at all (``environ["werkzeug.socket"]``); with no socket (WSGI test
  client) it sleeps ``lose_fallback_seconds`` instead.
- ``{"mode": "timeout_after_commit", "seconds": 65}``: store, then answer late (default n=1).
- ``{"mode": "delay", "seconds": 2}``: answer every matching request late (until reset).
- ``{"mode": "latency", "seconds": 0.05}``: sleep before every request (0 = off).
- ``{"mode": "rate_limit", "per_minute": 100}``: HTTP 429 beyond that in 60 s (0 = off).
- ``{"mode": "ksef_reject", "opis": "…"}``: the next KSeF send ends ``ODRZUCONA_PRZEZ_KSEF``.
- ``{"mode": "wrap_get", "enabled": true}``: single-invoice GET answers ``{"response": {…}}``.
- ``{"mode": "reset"}`` clears faults (``"state": true`` also documents);
  ``{"mode": "reset_state"}`` clears documents and counters only.

"Store" modes fire only after a successful POST/PUT; n defaults to 1 for one-shot modes.
"""

from __future__ import annotations

import random
import secrets
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from emulators.ifirma_rules import Totals, iso, ksef_number, num

WARSAW = ZoneInfo("Europe/Warsaw")
FIRST_ID = 1000001
# phase of each fault mode: "pre" answers before any work, "post" after a successful
# mutation was stored, "after" after any handled request, "ksef" at the next KSeF send.
FAULT_PHASES = {
    "fail_n": "pre", "http_500_before_commit": "pre", "kod_201": "pre", "kod_100": "pre",
    "error_after_create": "post", "lose_response": "post", "timeout_after_commit": "post",
    "delay": "after", "ksef_reject": "ksef",
}  # fmt: skip
ONE_SHOT = {"fail_n", "http_500_before_commit", "kod_201", "kod_100", "error_after_create",
            "timeout_after_commit", "ksef_reject"}  # fmt: skip


class FaultSpecError(ValueError):
    """The control request does not describe a known fault."""


@dataclass
class Doc:
    """A stored invoice or correction."""

    ident: int
    kind: str  # "faktura" | "korekta"
    seq: int
    number: str
    body: dict[str, Any]
    totals: Totals
    issue: date
    paid: Decimal
    original: int | None = None
    ksef_status: str | None = None
    ksef_opis: str | None = None
    ksef_number: str | None = None
    ksef_gets: int = 0
    ksef_reject: str | None = None


class Faults:
    """Active fault rules plus the always-on settings (latency, rate limit, GET wrapping)."""

    def __init__(self) -> None:
        self.rules: list[dict[str, Any]] = []
        self.latency = 0.0
        self.per_minute: int | None = None
        self.window: deque[float] = deque()

    def add(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        """Validate and activate one rule; returns it as stored."""
        mode = spec.get("mode")
        if mode not in FAULT_PHASES:
            raise FaultSpecError(f"unknown fault mode {mode!r}")
        n = spec.get("n", 1 if mode in ONE_SHOT else None)
        if n is not None and (not isinstance(n, int) or n < 1):
            raise FaultSpecError("n must be a positive integer")
        rate = float(spec.get("rate", 1.0))
        if not 0.0 <= rate <= 1.0:
            raise FaultSpecError("rate must be within [0, 1]")
        rule = {
            "mode": mode,
            "phase": FAULT_PHASES[mode],
            "n": n,
            "rate": rate,
            "route": spec.get("route"),
            "method": spec.get("method"),
            "seconds": float(spec.get("seconds", 65.0 if mode == "timeout_after_commit" else 0)),
            "message": str(spec.get("message", "Błąd walidacji (emulator)")),
            "opis": str(spec.get("opis", "Odrzucona przez KSeF (emulator)")),
        }
        rule["rng"] = random.Random(spec.get("seed"))  # seeded → reproducible lose rates
        self.rules.append(rule)
        return {k: v for k, v in rule.items() if k != "rng"}

    def take(self, phase: str, path: str, method: str) -> dict[str, Any] | None:
        """The first matching rule of `phase` that fires now; consumes one of its `n`."""
        for rule in self.rules:
            if rule["phase"] != phase or (rule["route"] and rule["route"] not in path):
                continue
            if rule["method"] and rule["method"].upper() != method:
                continue
            if rule["rate"] < 1.0 and rule["rng"].random() >= rule["rate"]:
                continue
            if rule["n"] is not None:
                rule["n"] -= 1
                if rule["n"] == 0:
                    self.rules.remove(rule)
            return rule
        return None

    def over_limit(self, now: float) -> bool:
        """Sliding 60-second window; True when this request must get HTTP 429."""
        if not self.per_minute:
            return False
        while self.window and self.window[0] <= now - 60:
            self.window.popleft()
        if len(self.window) >= self.per_minute:
            return True
        self.window.append(now)
        return False

    def describe(self) -> dict[str, Any]:
        """JSON-safe view for the control endpoint."""
        rules = [{k: v for k, v in r.items() if k != "rng"} for r in self.rules]
        return {"rules": rules, "latency": self.latency, "rate_limit_per_minute": self.per_minute}


class State:
    """Everything the fake account holds; reset with :meth:`clear`."""

    def __init__(
        self,
        *,
        seller_nip: str,
        ksef_delay_gets: int,
        accounting: tuple[int, int] | None,
        documents_limit: int,
        wrap_get: bool,
    ) -> None:
        self.lock = threading.RLock()
        self.seller_nip = seller_nip
        self.ksef_delay_gets = ksef_delay_gets
        self.documents_limit = documents_limit
        self.wrap_get = wrap_get
        self._initial_accounting = accounting
        self.faults = Faults()
        self.clear()

    def clear(self) -> None:
        """Forget all documents and counters (faults are kept)."""
        today = datetime.now(WARSAW).date()
        self.accounting = self._initial_accounting or (today.year, today.month)
        self.docs: dict[int, Doc] = {}
        self.by_number: dict[str, int] = {}
        self.series: dict[tuple[str, int, int], int] = {}
        self.next_id = FIRST_ID
        self.last_issue: date | None = None
        self.contractors: set[str] = set()
        self.outbox: list[dict[str, Any]] = []
        self.counts = {"requests": 0, "auth_failures": 0, "validation_errors": 0, "rate_limited": 0}

    def control(self, spec: Mapping[str, Any]) -> None:
        """Apply one ``POST /__emulator__/faults`` request."""
        mode = spec.get("mode")
        if mode == "reset":
            self.faults.rules.clear()
            self.faults.latency, self.faults.per_minute = 0.0, None
            if spec.get("state"):
                self.clear()
        elif mode == "reset_state":
            self.clear()
        elif mode == "latency":
            self.faults.latency = max(0.0, float(spec.get("seconds", 0.0)))
        elif mode == "rate_limit":
            self.faults.per_minute = int(spec.get("per_minute") or 0) or None
            self.faults.window.clear()
        elif mode == "wrap_get":
            self.wrap_get = bool(spec.get("enabled", True))
        else:
            self.faults.add(spec)

    # -- documents -------------------------------------------------------------------------

    def store(self, kind: str, body: dict[str, Any], totals: Totals, **extra: Any) -> Doc:
        """Assign Identyfikator and the next number of the month's series, then store."""
        issue = iso(body["DataWystawienia"])
        key = (kind, issue.year, issue.month)
        self.series[key] = seq = self.series.get(key, 0) + 1
        number = f"{seq}/{issue.month}/{issue.year}" + ("/K" if kind == "korekta" else "")
        paid = num(body.get("Zaplacono")) or Decimal("0.00")
        doc = Doc(self.next_id, kind, seq, number, body, totals, issue, paid, **extra)
        self.docs[doc.ident] = doc
        self.by_number[number] = doc.ident
        self.next_id += 1
        if kind == "faktura":
            self.last_issue = max(self.last_issue or issue, issue)
            nip = (body.get("Kontrahent") or {}).get("NIP")
            if nip:
                self.contractors.add(str(nip))
        return doc

    def find(self, key: str) -> Doc | None:
        """By Identyfikator or by full number with "/" written as "_"."""
        if key.isdigit() and int(key) in self.docs:
            return self.docs[int(key)]
        ident = self.by_number.get(key.replace("_", "/"))
        return self.docs.get(ident) if ident is not None else None

    def documents_this_month(self) -> int:
        """Documents issued in the current calendar month (the API document limit)."""
        this_month = datetime.now(WARSAW).date().replace(day=1)
        return sum(1 for d in self.docs.values() if d.issue.replace(day=1) == this_month)

    # -- KSeF ------------------------------------------------------------------------------

    def ksef_send(self, doc: Doc, reject: str | None) -> bool:
        """Queue the document for KSeF; False when it was already sent (→ Kod 201)."""
        if doc.ksef_status in ("WYSLANA_DO_KSEF", "PRZYJETA_W_KSEF"):
            return False
        doc.ksef_status, doc.ksef_opis, doc.ksef_gets = "WYSLANA_DO_KSEF", "W trakcie", 0
        doc.ksef_reject = reject
        return True

    def ksef_observe(self, doc: Doc) -> None:
        """A GET of the document: the first `ksef_delay_gets` GETs see it in flight."""
        if doc.ksef_status != "WYSLANA_DO_KSEF":
            return
        if doc.ksef_gets < self.ksef_delay_gets:
            doc.ksef_gets += 1
            return
        if doc.ksef_reject:
            doc.ksef_status, doc.ksef_opis = "ODRZUCONA_PRZEZ_KSEF", doc.ksef_reject
            return
        today = datetime.now(WARSAW).date()
        doc.ksef_number = ksef_number(self.seller_nip, today, secrets.token_hex(6))
        doc.ksef_status, doc.ksef_opis = "PRZYJETA_W_KSEF", "Sukces"

    # -- views -----------------------------------------------------------------------------

    def render(self, doc: Doc) -> dict[str, Any]:
        """The single-invoice GET object (unwrapped shape)."""
        out = dict(doc.body)
        out.update(
            Identyfikator=doc.ident,
            Numer=doc.seq,
            PelnyNumer=doc.number,
            Brutto=doc.totals.gross,
            Netto=doc.totals.net,
            Vat=doc.totals.vat,
            Zaplacono=doc.paid,
            NumerKSEF=doc.ksef_number,
        )
        if doc.original is not None:
            out["IdentyfikatorFakturyKorygowanej"] = doc.original  # (*) name unverified
        if doc.ksef_status:
            out["StatusKSEF"] = {"Status": doc.ksef_status, "Opis": doc.ksef_opis}
        return out

    def query(self, params: Mapping[str, str]) -> list[dict[str, Any]] | str:
        """``faktury.json`` items for the filters, or an error message for Kod 201."""
        start = iso(params.get("dataOd"))
        if start is None:
            return "dataOd: wymagany parametr RRRR-MM-DD"
        end = iso(params.get("dataDo")) if params.get("dataDo") else start + timedelta(days=30)
        if end is None:
            return "dataDo: niepoprawna data"
        try:
            low = Decimal(params["kwotaOd"]) if params.get("kwotaOd") else None
            high = Decimal(params["kwotaDo"]) if params.get("kwotaDo") else None
            page, size = int(params.get("strona", 1)), int(params.get("iloscNaStronie", 20))
        except (ArithmeticError, ValueError):
            return "kwotaOd/kwotaDo/strona/iloscNaStronie: niepoprawna wartość"
        if page < 1 or size < 1:
            return "strona/iloscNaStronie: wymagane >= 1"
        statuses = set(filter(None, params.get("status", "").split(",")))
        if params.get("typ") not in (None, "prz_faktura_kraj"):
            return []  # only domestic sale invoices exist here
        hits = []
        for d in sorted(self.docs.values(), key=lambda d: d.ident):
            nip = str((d.body.get("Kontrahent") or {}).get("NIP") or d.body.get("NIPKontrahenta"))
            if d.kind != "faktura" or not start <= d.issue <= end:
                continue
            if params.get("nipKontrahenta") and nip != params["nipKontrahenta"]:
                continue
            if (low is not None and d.totals.gross < low) or (high and d.totals.gross > high):
                continue
            if statuses and self._pay_status(d) not in statuses:
                continue
            # No Uwagi in list items on purpose: reconciliation must GET each candidate.
            hits.append(
                {
                    "FakturaId": d.ident,
                    "PelnyNumer": d.number,
                    "Rodzaj": "prz_faktura_kraj",
                    "Waluta": "PLN",
                    "Brutto": d.totals.gross,
                    "CzyWyslano": d.ksef_status is not None,
                    "DataWystawienia": d.issue.isoformat(),
                }
            )
        return hits[(page - 1) * size : page * size]

    @staticmethod
    def _pay_status(d: Doc) -> str:
        if d.paid >= d.totals.gross:
            return "oplacone"
        due = iso(d.body.get("TerminPlatnosci"))
        if due and due < datetime.now(WARSAW).date():
            return "przeterminowane"
        return "oplaconeCzesciowo" if d.paid > 0 else "nieoplacone"

    def snapshot(self) -> dict[str, Any]:
        """``GET /__emulator__/state``: what tests and the demo need to see."""
        docs = [
            {
                "id": d.ident,
                "kind": d.kind,
                "number": d.number,
                "uwagi": d.body.get("Uwagi"),
                "gross": str(d.totals.gross),
                "net": str(d.totals.net),
                "paid": str(d.paid),
                "issue_date": d.issue.isoformat(),
                "original": d.original,
                "ksef_status": d.ksef_status,
                "ksef_number": d.ksef_number,
            }
            for d in sorted(self.docs.values(), key=lambda d: d.ident)
        ]
        counts = dict(self.counts)
        counts["invoices"] = sum(1 for d in docs if d["kind"] == "faktura")
        counts["corrections"] = sum(1 for d in docs if d["kind"] == "korekta")
        return {
            "invoices": docs,
            "counts": counts,
            "outbox": list(self.outbox),
            "accounting_month": {"year": self.accounting[0], "month": self.accounting[1]},
            "faults": self.faults.describe(),
            "wrap_get": self.wrap_get,
            "at": time.time(),
        }

"""iFirma REST ("iapi") client: HMAC-SHA1 signing, the HTTP calls for invoices and KSeF.

The facts are in docs/protocols/ifirma.md (authentication, endpoints, responses and errors);
the typed errors live in invoicing/ifirma_errors.py. Only ``Kod == 0`` is success, whatever
the HTTP status. Request and response bodies carry buyer data, so they are never logged; only
method, path, HTTP status, Kod and timing are.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Iterator, Mapping
from datetime import date
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import quote, urlsplit, urlunsplit

import requests

from invoicing.ifirma_errors import (
    IFirmaAuthError,
    IFirmaError,
    IFirmaRateLimitError,
    IFirmaTransientError,
    IFirmaValidationError,
    error_for_kod,
    is_already_sent,
    never_sent,
)
from invoicing.money import dumps

__all__ = [
    "KSEF_KINDS",
    "IFirmaAuthError",
    "IFirmaClient",
    "IFirmaError",
    "IFirmaRateLimitError",
    "IFirmaTransientError",
    "IFirmaValidationError",
    "auth_header",
    "ksef_status",
]

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://www.ifirma.pl/iapi"
KSEF_KINDS = frozenset(
    {
        "fakturakraj", "fakturakraj/korekta", "fakturawysylka", "fakturazaliczka",
        "fakturakoncowa", "fakturazaliczkowawaluta", "fakturakoncowawaluta",
        "fakturaeksporttowarow", "fakturawdt", "fakturaeksportuslug", "fakturaeksportuslugue",
        "fakturawaluta", "fakturabudowa", "fakturaparagon", "fakturawyposazenie",
        "fakturasrodektrwaly", "fakturametodakasowa", "fakturaszczegolnyobowiazek", "fakturaoss",
    }
)  # fmt: skip


def auth_header(url: str, user: str, key_name: str, key_hex: str, body: bytes = b"") -> str:
    """Value of the ``Authentication`` header: HMAC-SHA1 over url-without-query + user + key
    name + the exact body bytes, keyed with the hex-decoded key (docs/protocols/ifirma.md,
    authentication)."""
    parts = urlsplit(url)
    bare_url = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    message = bare_url.encode() + user.encode() + key_name.encode() + body
    digest = hmac.new(bytes.fromhex(key_hex), message, hashlib.sha1).hexdigest()
    return f"IAPIS user={user}, hmac-sha1={digest}"


def ksef_status(invoice: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(KSeF number, StatusKSEF.Status) from a GET invoice body; keys matched case-insensitively
    because clients have seen both ``NumerKSEF`` and ``NumerKSeF`` (docs/protocols/ifirma.md,
    KSeF)."""
    by_lower = {str(k).lower(): v for k, v in invoice.items()}
    number = by_lower.get("numerksef") or None
    status_obj = by_lower.get("statusksef")
    status = None
    if isinstance(status_obj, Mapping):
        status = {str(k).lower(): v for k, v in status_obj.items()}.get("status")
    return (str(number) if number else None), (str(status) if status else None)


def _path_id(invoice_id: str | int) -> str:
    # Paths take the Identyfikator or the full number with "/" replaced by "_"
    # (docs/protocols/ifirma.md, endpoints).
    return quote(str(invoice_id).replace("/", "_"), safe="_-.")


class IFirmaClient:
    """Thin typed wrapper over the iFirma iapi; one instance per account."""

    def __init__(
        self,
        http: requests.Session,
        *,
        user: str,
        keys: Mapping[str, str],
        base_url: str = DEFAULT_BASE_URL,
        timeout: tuple[float, float] = (5.0, 60.0),
    ) -> None:
        for name, key in keys.items():
            try:
                bytes.fromhex(key)  # fail at startup, not at the first invoice
            except ValueError:
                raise ValueError(f"iFirma key {name!r} is not hex") from None
        self._http = http
        self._user = user
        self._keys = dict(keys)
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout

    # -- transport -------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        *,
        key_name: str = "faktura",
        payload: Any = None,
        params: Mapping[str, str] | None = None,
        accept: str = "application/json",
    ) -> requests.Response:
        if key_name not in self._keys:
            raise IFirmaAuthError(f"no iFirma key configured for {key_name!r}")
        url = f"{self._base_url}/{path}"
        body = dumps(payload) if payload is not None else b""  # serialised exactly once
        headers = {
            "Accept": accept,
            "Content-Type": "application/json; charset=UTF-8",
            # params go separately, so `url` is already the query-less URL iFirma signs
            "Authentication": auth_header(url, self._user, key_name, self._keys[key_name], body),
        }
        started = time.monotonic()
        try:
            resp = self._http.request(
                method,
                url,
                params=params,
                data=body or None,
                headers=headers,
                timeout=self._timeout,
            )
        except requests.RequestException as exc:
            unknown = not never_sent(exc)
            log.warning(
                "ifirma %s %s failed: %s (sent=%s)",
                method,
                path,
                type(exc).__name__,
                "maybe" if unknown else "no",
            )
            raise IFirmaTransientError(
                f"{type(exc).__name__} calling iFirma", outcome_unknown=unknown
            ) from exc
        log.info(
            "ifirma %s %s -> HTTP %s in %.0f ms",
            method,
            path,
            resp.status_code,
            (time.monotonic() - started) * 1000,
        )
        self._raise_for_http(resp)
        return resp

    @staticmethod
    def _raise_for_http(resp: requests.Response) -> None:
        status = resp.status_code
        if status == 429:
            retry = resp.headers.get("Retry-After", "")
            raise IFirmaRateLimitError(
                "iFirma rate limit exceeded",
                http_status=status,
                retry_after=float(retry) if retry.replace(".", "", 1).isdigit() else None,
            )
        if status < 400:
            return
        envelope = IFirmaClient._maybe_envelope(resp)
        kod, info = envelope if envelope else (None, f"HTTP {status}")
        if status >= 500:
            raise IFirmaTransientError(info, kod=kod, http_status=status, outcome_unknown=True)
        if status in (401, 403):
            raise IFirmaAuthError(info, kod=kod, http_status=status)
        if kod:
            raise error_for_kod(kod, info, status)
        raise IFirmaError(info, kod=kod, http_status=status)

    @staticmethod
    def _maybe_envelope(resp: requests.Response) -> tuple[int, str] | None:
        try:
            inner = json.loads(resp.content).get("response", {})
            return int(inner["Kod"]), str(inner.get("Informacja", ""))
        except (ValueError, AttributeError, KeyError, TypeError):
            return None

    @staticmethod
    def _json(resp: requests.Response) -> dict[str, Any]:
        try:
            body = json.loads(resp.content, parse_float=Decimal)
        except ValueError:
            # HTTP 200 with garbage (a proxy page?): the call may have been processed.
            raise IFirmaTransientError(
                "iFirma answered with invalid JSON",
                http_status=resp.status_code,
                outcome_unknown=True,
            ) from None
        if not isinstance(body, dict):
            raise IFirmaError("iFirma answered with a non-object JSON", http_status=200)
        return body

    def _envelope(self, resp: requests.Response) -> dict[str, Any]:
        """The ``response`` object of a wrapped answer; raises unless ``Kod == 0``."""
        body = self._json(resp)
        inner = body.get("response")
        if not isinstance(inner, dict) or "Kod" not in inner:
            raise IFirmaError("iFirma answer has no response.Kod", http_status=resp.status_code)
        self._check_kod(inner, resp.status_code)
        return inner

    @staticmethod
    def _check_kod(inner: Mapping[str, Any], http_status: int) -> None:
        try:
            kod = int(inner["Kod"])
        except (TypeError, ValueError):
            raise IFirmaError(f"non-numeric Kod {inner['Kod']!r}", http_status=http_status)
        log.info("ifirma Kod %s", kod)
        if kod != 0:
            raise error_for_kod(kod, str(inner.get("Informacja", "")), http_status)

    # -- invoices --------------------------------------------------------------------------

    def create_invoice(self, payload: Mapping[str, Any]) -> str:
        """POST ``fakturakraj.json``; returns the Identyfikator as text."""
        return self._create("fakturakraj.json", payload)

    def create_correction(self, original_id: str, payload: Mapping[str, Any]) -> str:
        """POST ``fakturakraj/korekta/{id}.json``; returns the correction's Identyfikator."""
        return self._create(f"fakturakraj/korekta/{_path_id(original_id)}.json", payload)

    def _create(self, path: str, payload: Mapping[str, Any]) -> str:
        inner = self._envelope(self._send("POST", path, payload=payload))
        wynik = inner.get("Wynik")
        ident = inner.get("Identyfikator")
        if ident in (None, "") and isinstance(wynik, Mapping):
            ident = wynik.get("Identyfikator")
        if ident in (None, "") or isinstance(ident, bool):
            # Kod 0 means it was probably created; without an id only reconciliation can tell.
            raise IFirmaTransientError("Kod 0 without Identyfikator", kod=0, outcome_unknown=True)
        return str(ident)

    def get_invoice(self, invoice_id: str) -> dict[str, Any]:
        """GET ``fakturakraj/{id}.json``; accepts unwrapped, ``{"response":…}`` and ``Wynik``."""
        resp = self._send("GET", f"fakturakraj/{_path_id(invoice_id)}.json")
        body = self._json(resp)
        inner = body.get("response", body)
        if not isinstance(inner, dict):
            raise IFirmaError("unexpected invoice shape", http_status=resp.status_code)
        if "Kod" in inner:
            self._check_kod(inner, resp.status_code)
        wynik = inner.get("Wynik")
        invoice = dict(wynik) if isinstance(wynik, Mapping) else inner
        return {k: v for k, v in invoice.items() if k not in ("Kod", "Informacja")}

    def list_invoices(
        self,
        *,
        date_from: date,
        date_to: date | None = None,
        nip: str | None = None,
        amount_from: Decimal | None = None,
        amount_to: Decimal | None = None,
        page: int = 1,
        per_page: int = 100,
    ) -> list[dict[str, Any]]:
        """GET ``faktury.json``: one page of items (``FakturaId``, ``PelnyNumer``, ``Brutto``…)."""
        params = {"dataOd": date_from.isoformat()}
        optional = {
            "dataDo": date_to.isoformat() if date_to else None,
            "nipKontrahenta": nip,
            "kwotaOd": f"{amount_from:.2f}" if amount_from is not None else None,
            "kwotaDo": f"{amount_to:.2f}" if amount_to is not None else None,
        }
        params.update({k: v for k, v in optional.items() if v is not None})
        params.update({"strona": str(page), "iloscNaStronie": str(per_page)})
        wynik = self._envelope(self._send("GET", "faktury.json", params=params)).get("Wynik")
        if wynik is None:
            return []
        return [dict(wynik)] if isinstance(wynik, Mapping) else [dict(w) for w in wynik]

    def iter_invoices(self, *, per_page: int = 100, **filters: Any) -> Iterator[dict[str, Any]]:
        """All list items for the filters of :meth:`list_invoices`, page by page."""
        page, seen = 1, set()
        while True:
            items = self.list_invoices(page=page, per_page=per_page, **filters)
            ids = {str(i.get("FakturaId")) for i in items}
            if items and ids <= seen:  # a server ignoring `strona` must not loop us forever
                return
            seen |= ids
            yield from items
            if len(items) < per_page:
                return
            page += 1

    def get_pdf(self, invoice_id: str) -> bytes:
        """GET ``fakturakraj/{id}.pdf.single``; raises if iFirma answers with an envelope."""
        path = f"fakturakraj/{_path_id(invoice_id)}.pdf.single"
        resp = self._send("GET", path, accept="application/pdf")
        if resp.content.startswith(b"%PDF-"):
            return resp.content
        self._envelope(resp)  # raises the typed error for a Kod≠0 envelope
        raise IFirmaError("iFirma did not return a PDF", http_status=resp.status_code)

    def send_to_ksef(self, invoice_id: str, *, kind: str = "fakturakraj") -> None:
        """POST ``{kind}/ksef/send/{id}.json`` with ``{"DataWysylki": null}`` (send now).

        Kod 201 saying the invoice was already sent ("już wysłana") counts as success, so a
        retried job is harmless; other Kod 201 messages still raise.
        """
        if kind not in KSEF_KINDS:
            raise ValueError(f"unknown KSeF invoice kind {kind!r}")
        path = f"{kind}/ksef/send/{_path_id(invoice_id)}.json"
        try:
            self._envelope(self._send("POST", path, payload={"DataWysylki": None}))
        except IFirmaValidationError as exc:
            if exc.kod != 201 or not is_already_sent(exc.message):
                raise
            log.info("ifirma invoice already sent to KSeF; treating as success")

    # -- account (key "abonent") -----------------------------------------------------------

    def api_limit(self) -> dict[str, Any]:
        """GET ``abonent/limit.json`` → ``{"LimitWykorzystany": …, "LimitPrzyznany": …, …}``."""
        return dict(self._envelope(self._send("GET", "abonent/limit.json", key_name="abonent")))

    def accounting_month(self) -> tuple[int, int]:
        """Current accounting month as ``(year, month)``."""
        resp = self._send("GET", "abonent/miesiacksiegowy.json", key_name="abonent")
        inner = self._envelope(resp)
        try:
            return int(inner["RokKsiegowy"]), int(inner["MiesiacKsiegowy"])
        except (KeyError, TypeError, ValueError):
            raise IFirmaError("accounting month missing from the answer", http_status=200)

    def shift_accounting_month(
        self, direction: Literal["NAST", "POPRZ"], *, carry_over_year: bool = False
    ) -> None:
        """Move the account-wide accounting month one step (an accountant-visible change)."""
        if direction not in ("NAST", "POPRZ"):
            raise ValueError("direction must be 'NAST' or 'POPRZ'")
        body = {"MiesiacKsiegowy": direction, "PrzeniesDaneZPoprzedniegoRoku": carry_over_year}
        resp = self._send("PUT", "abonent/miesiacksiegowy.json", key_name="abonent", payload=body)
        self._envelope(resp)

"""GET /v1/archives/invoices: a period's invoices as one streamed ZIP, for accountants.

The ZIP is built by `invoicing.archive.export` while it is sent, so memory stays flat whatever
the period holds. Errors in the query string are 400 problem+json whose `errors` names the
parameter (not 422: the period is not a JSON body, and accountants' tools expect 400).

Audit trail, two rows per download, on purpose: `require_role` writes the usual request row
("GET archives.download_invoice_archive") before anything is sent — who asked for what. When the
stream ends this module adds one "archive.download" row with the period, counts, bytes, the
ZIP's sha256 and the outcome (`complete`, `aborted` when the client went away, `failed`) —
what was actually handed out, which is only known at the end.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from datetime import date
from typing import Any

from flask import Flask, Response, current_app, request
from flask_smorest import Blueprint
from sqlalchemy.orm import Session

from invoicing.archive import (
    MAX_PERIOD_DAYS,
    ArchiveStream,
    PeriodError,
    archive_filename,
    export,
    validate_period,
)
from models import Role, utcnow
from service.auth import audit, current_principal, require_role
from service.db import runtime
from service.errors import ApiError

log = logging.getLogger("kwit.archive")

bp = Blueprint(
    "archives", __name__, url_prefix="/v1", description="Invoice archives for accountants"
)

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DAY_PARAM = {"type": "string", "format": "date", "example": "2026-11-01"}
_PARAMETERS = [
    {"in": "query", "name": "from", "required": True, "schema": _DAY_PARAM,
     "description": "First issue date, inclusive (YYYY-MM-DD)."},
    {"in": "query", "name": "to", "required": True, "schema": _DAY_PARAM,
     "description": f"Last issue date, inclusive; at most {MAX_PERIOD_DAYS} days after `from`."},
]  # fmt: skip
_RESPONSES = {
    "200": {
        "description": "ZIP: invoices/*.pdf, manifest.csv, manifest.json, README.txt, SHA256SUMS.",
        "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
    },
    "400": {"description": "Missing or malformed date, `from` after `to`, or period too long."},
}


def parse_day(text: str | None, param: str) -> date:
    """A YYYY-MM-DD query parameter, or PeriodError naming it."""
    if not text:
        raise PeriodError(param, f"`{param}` is required (YYYY-MM-DD).")
    try:
        if not _DAY.match(text):
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise PeriodError(param, f"`{param}` must be a date as YYYY-MM-DD, got {text[:20]!r}.")


def parse_period(args: Mapping[str, str]) -> tuple[date, date]:
    """`from` and `to` from the query string, validated; ApiError(400) naming the parameter."""
    try:
        start, end = parse_day(args.get("from"), "from"), parse_day(args.get("to"), "to")
        validate_period(start, end)
    except PeriodError as exc:
        raise ApiError(400, str(exc), errors={exc.param: [str(exc)]}, hint=exc.hint)
    return start, end


@bp.get("/archives/invoices")
@bp.doc(security=[{"ApiKey": []}], parameters=_PARAMETERS, responses=_RESPONSES)
@require_role(Role.ACCOUNTANT)
def download_invoice_archive() -> Response:
    """Stream a ZIP of the issued invoices (sales and corrections) with issue dates in the period.

    An empty period gives a valid ZIP whose manifest has only its header. Verify a download with
    `unzip -t` and, after unpacking, `sha256sum -c SHA256SUMS` (README.txt inside explains).
    """
    start, end = parse_period(request.args)
    rt = runtime()
    # A session of its own: the stream outlives the view, and the request's session is closed
    # at teardown. The query starts here, so a database error is still a clean 503.
    session = rt.sessions()
    try:
        stream = export(session, rt.blobs, start=start, end=end, generated_at=utcnow())
    except BaseException:
        session.close()
        raise
    # Everything the stream needs is passed in, not taken from the request context: the body is
    # iterated after the view returns, and a WSGI server may close it at any time.
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    audit_to = (app, current_principal().actor, request.remote_addr)
    response = Response(_send(stream, session, *audit_to), mimetype="application/zip")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{archive_filename(start, end)}"'
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Accel-Buffering"] = "no"  # nginx: pass chunks on, don't buffer 500 MB
    # Runs even when the body is never iterated (HEAD, a client gone before the first byte).
    response.call_on_close(stream.close)
    response.call_on_close(session.close)
    return response


def _send(
    stream: ArchiveStream, session: Session, app: Flask, actor: str, remote_addr: str | None
) -> Iterator[bytes]:
    """Pass the archive on; log a failure (the client is left with a truncated ZIP) and audit."""
    outcome = "aborted"
    try:
        yield from stream
        outcome = "complete"
    except Exception:
        outcome = "failed"
        # Headers are gone, so no problem+json: the connection is cut and `unzip -t` fails.
        log.exception("archive stream failed mid-way", extra=_details(stream, outcome))
        raise
    finally:
        # Release the read transaction first: on SQLite it holds the write lock the audit needs.
        stream.close()
        session.close()
        try:
            s = stream.summary
            obj = f"invoices:{s.start.isoformat()}..{s.end.isoformat()}"
            with app.app_context(), app.extensions["kwit"].sessions() as audit_session:
                details = _details(stream, outcome)
                audit(
                    audit_session,
                    actor,
                    "archive.download",
                    obj,
                    details=details,
                    remote_addr=remote_addr,
                )
                audit_session.commit()
        except Exception:
            log.exception("could not write the archive.download audit row")
        if outcome == "complete":
            log.info("archive sent", extra=_details(stream, outcome))


def _details(stream: ArchiveStream, outcome: str) -> dict[str, Any]:
    details = stream.summary.as_dict()
    del details["complete"]  # `outcome` says more
    return {**details, "outcome": outcome}

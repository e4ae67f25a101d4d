"""The accountants' archive written to a file (`kwit archive`): whole or not at all, audited."""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import date
from pathlib import Path
from typing import Any, Protocol

from invoicing.archive import ArchiveSummary, count_invoices, export
from models import utcnow
from service.auth import audit
from service.runtime import Runtime


class Progress(Protocol):
    def update(self, n_steps: int) -> None: ...


class ArchiveWriteError(Exception):
    """The archive could not be written; no file was left under the requested name."""


def write_archive(
    rt: Runtime,
    first: date,
    last: date,
    output: Path,
    *,
    progress: Callable[[int], AbstractContextManager[Progress]],
) -> ArchiveSummary:
    """Stream the archive of [first, last] into OUTPUT.part, then rename it to OUTPUT.

    A file under the final name is therefore always whole. `progress(total)` opens a progress
    bar advanced once per invoice. Every run, failed ones included, is in the audit log.
    """
    part = output.with_name(output.name + ".part")
    outcome, summary = "aborted", ArchiveSummary(start=first, end=last, generated_at=utcnow())
    try:
        with rt.sessions() as session:
            total = count_invoices(session, first, last)
            with progress(total) as bar, part.open("wb") as handle:
                stream = export(
                    session,
                    rt.blobs,
                    start=first,
                    end=last,
                    generated_at=summary.generated_at,
                    progress=bar.update,
                )
                summary = stream.summary
                for chunk in stream:
                    handle.write(chunk)
                handle.flush()
                os.fsync(handle.fileno())  # durable before it gets the final name
        os.replace(part, output)
        outcome = "complete"
    except Exception as exc:
        outcome = "failed"
        raise ArchiveWriteError(f"the archive was not written: {exc}") from exc
    finally:
        if outcome != "complete":
            part.unlink(missing_ok=True)
        with rt.sessions() as audit_session:
            details = _details(summary, output, outcome)
            audit(audit_session, "cli", "archive.export", _object(first, last), details=details)
            audit_session.commit()
    return summary


def _object(first: date, last: date) -> str:
    return f"invoices:{first.isoformat()}..{last.isoformat()}"


def _details(summary: ArchiveSummary, output: Path, outcome: str) -> dict[str, Any]:
    details = summary.as_dict()
    del details["complete"]
    try:
        user = getpass.getuser()  # who ran it: the audit row's actor is only "cli"
    except (KeyError, OSError):
        user = None
    return {**details, "outcome": outcome, "file": str(output.resolve()), "os_user": user}

"""What a retention purge did (or, for a dry run, would do): counts per kind, and its table."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from compliance.purge_plan import COLUMNS, KINDS, PurgePlan

__all__ = ["PurgeReport", "format_report"]


@dataclass
class PurgeReport:
    """What a run did (or, for a dry run, would do)."""

    today: date
    dry_run: bool
    counts: dict[str, dict[str, int]]
    blobs: list[str]
    blobs_deleted: int = 0

    @classmethod
    def from_plan(cls, plan: PurgePlan, *, dry_run: bool) -> PurgeReport:
        """The report of ``plan``: the same counts whether or not it is carried out."""
        return cls(plan.today, dry_run, plan.counts(), list(plan.blobs))

    def total(self, column: str) -> int:
        """Sum of one column over all kinds."""
        return sum(c[column] for c in self.counts.values())

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (the audit entry's details)."""
        return {
            "as_of": self.today.isoformat(),
            "dry_run": self.dry_run,
            "counts": self.counts,
            "pdf_blobs": len(self.blobs),
        }


def format_report(report: PurgeReport) -> str:
    """The per-kind table `kwit retention run` prints."""
    head = ("KIND", "ELIGIBLE", "HELD (SKIPPED)", "DELETED", "ANONYMISED", "KEPT (REFERENCED)")
    widths = [len(h) + 2 for h in head[1:]]
    lines = [f"{head[0]:<16}" + "".join(f"{h:>{w}}" for h, w in zip(head[1:], widths, strict=True))]
    for kind in (*KINDS, "total"):
        if kind == "total":
            values = [report.total(c) for c in COLUMNS]
        else:
            values = [report.counts[kind][c] for c in COLUMNS]
        lines.append(
            f"{kind:<16}" + "".join(f"{v:>{w}}" for v, w in zip(values, widths, strict=True))
        )
    blobs = "would be deleted" if report.dry_run else "deleted"
    count = len(report.blobs) if report.dry_run else report.blobs_deleted
    lines.append(f"invoice PDFs {blobs}: {count}")
    return "\n".join(lines)

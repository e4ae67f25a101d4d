"""Archive export benchmark: 10,000 issued invoices with ~50 KB random PDFs, exported twice.

1. through the CLI (`kwit archive` in a child process), and
2. through the API (a child process running the Flask test client, streaming to /dev/null).

Each child's own peak RSS comes from os.wait4 (per child, unlike RUSAGE_CHILDREN, which is the
maximum over all children). Prints one line per path:

    RESULT archive invoices=10000 seconds=… peak_rss_mb=… bytes=… via=cli|api

Usage (PostgreSQL by default: a throwaway database is created on the server and dropped):

    .venv/bin/python bench/archive_memory.py [--database-url postgresql://postgres@127.0.0.1:5432/postgres]
    .venv/bin/python bench/archive_memory.py --sqlite          # a temporary SQLite file instead
    .venv/bin/python bench/archive_memory.py --invoices 1000   # a quicker run

Target: peak RSS < 150 MB for 10,000 invoices. Results: docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FIRST, LAST = date(2026, 1, 1), date(2026, 12, 31)
KWIT = str(Path(sys.executable).with_name("kwit"))


@contextmanager
def throwaway_database(server_url: str) -> Iterator[str]:
    """A new PostgreSQL database on `server_url`'s server, dropped afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"kwit_bench_archive_{os.getpid()}"
    admin_url = make_url(server_url).set(drivername="postgresql")
    conninfo = admin_url.render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(conninfo, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def populate(url: str, blob_dir: Path, count: int, pdf_bytes: int) -> None:
    """`count` issued invoices over 2026 (one order each), bulk-inserted; PDFs in the blob store."""
    import sqlalchemy as sa

    from models import Invoice, InvoiceKind, InvoiceState, Order, OrderStatus, new_id
    from models.blobs import LocalBlobStore
    from models.migrate import upgrade
    from models.session import make_engine, make_session_factory

    upgrade(url)
    blobs = LocalBlobStore(blob_dir)
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    now = datetime.now(UTC)
    started = time.monotonic()
    for batch_start in range(0, count, 1000):
        orders, invoices = [], []
        for n in range(batch_start, min(count, batch_start + 1000)):
            order_id, day = new_id(), FIRST + timedelta(days=n % 365)
            key, digest = blobs.put(b"%PDF-1.4\n" + secrets.token_bytes(pdf_bytes))
            orders.append(
                {
                    "id": order_id,
                    "external_ref": f"bench-{n}",
                    "customer_ref": f"cust-{n % 500}",
                    "provider": "paynow",
                    "currency": "PLN",
                    "gross_minor": 12300,
                    "items": [
                        {"name": "Pro", "quantity": 1, "unit_gross_minor": 12300, "vat_rate": "23"}
                    ],
                    "buyer_type": "business",
                    "status": OrderStatus.PAID,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            invoices.append(
                {
                    "id": new_id(),
                    "order_id": order_id,
                    "kind": InvoiceKind.SALE,
                    "dedupe_key": f"sale:{order_id}",
                    "state": InvoiceState.ISSUED,
                    "attempts": 1,
                    "provider": "paynow",
                    "provider_payment_id": f"P{n:015d}",
                    "gross_minor": 12300,
                    "currency": "PLN",
                    "number": f"{n // 365 + 1}/{day.month:02d}/{day.year}",
                    "ksef_number": f"5260250995-{day:%Y%m%d}-{n:012X}-AB",
                    "issue_date": day,
                    "sale_date": day,
                    "totals": {"23": {"net_minor": 10000, "vat_minor": 2300, "gross_minor": 12300}},
                    "buyer_nip": "5260250995",
                    "pdf_key": key,
                    "pdf_sha256": digest,
                    "retention_basis": "PL_VAT_112+OP_70_1",
                    "retain_until": date(2032, 12, 31),
                    "issued_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        with sessions.begin() as session:
            session.execute(sa.insert(Order), orders)
            session.execute(sa.insert(Invoice), invoices)
    engine.dispose()
    print(f"populated {count} invoices in {time.monotonic() - started:.1f} s", file=sys.stderr)


def measure(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run a child; return (seconds, its own peak RSS in MB)."""
    started = time.monotonic()
    child = subprocess.Popen(argv, env={**os.environ, **env}, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.monotonic() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{argv[:3]} failed with status {status}")
    return seconds, usage.ru_maxrss / 1024  # kilobytes on Linux


def api_child(url: str, blob_dir: str, bytes_file: str) -> None:
    """Download the archive through the Flask app and stream it to /dev/null."""
    from service.app import create_app
    from service.auth import create_key

    app = create_app(
        {"KWIT_DATABASE_URL": url, "KWIT_BLOB_DIR": blob_dir, "KWIT_LOG_LEVEL": "WARNING"}
    )
    from models import Role

    with app.extensions["kwit"].sessions() as session:
        token = create_key(session, name="bench", role=Role.ACCOUNTANT).token
        session.commit()
    query = f"/v1/archives/invoices?from={FIRST}&to={LAST}"
    response = app.test_client().get(
        query, headers={"Authorization": f"Bearer {token}"}, buffered=False
    )
    assert response.status_code == 200, response.status_code
    size = 0
    with open(os.devnull, "wb") as sink:
        for chunk in response.response:
            sink.write(chunk)
            size += len(chunk)
    response.close()
    Path(bytes_file).write_text(str(size))


def check(path: Path, expected_invoices: int) -> None:
    """The archive is whole: every entry's CRC, the file count and SHA256SUMS spot checks."""
    if shutil.which("unzip"):
        subprocess.run(["unzip", "-tq", str(path)], check=True, stdout=subprocess.DEVNULL)
    with zipfile.ZipFile(path) as archive:
        pdfs = [n for n in archive.namelist() if n.startswith("invoices/")]
        assert len(pdfs) == expected_invoices, len(pdfs)
        sums = dict(
            line.split("  ")[::-1] for line in archive.read("SHA256SUMS").decode().splitlines()
        )
        for name in (pdfs[0], pdfs[-1], "manifest.csv"):
            assert hashlib.sha256(archive.read(name)).hexdigest() == sums[name], name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="PostgreSQL server to create a throwaway database on",
    )
    parser.add_argument("--sqlite", action="store_true", help="use a temporary SQLite file instead")
    parser.add_argument("--invoices", type=int, default=10_000)
    parser.add_argument("--pdf-kb", type=int, default=50)
    parser.add_argument(
        "--api-child", nargs=3, metavar=("URL", "BLOB_DIR", "BYTES_FILE"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.api_child:
        api_child(*args.api_child)
        return

    with tempfile.TemporaryDirectory(prefix="kwit-bench-archive-") as tmp:
        work = Path(tmp)
        database = (
            nullcontext_url(f"sqlite:///{work / 'kwit.db'}")
            if args.sqlite
            else throwaway_database(args.database_url)
        )
        with database as url:
            populate(url, work / "blobs", args.invoices, args.pdf_kb * 1024)
            env = {
                "KWIT_DATABASE_URL": url,
                "KWIT_BLOB_DIR": str(work / "blobs"),
                "KWIT_LOG_LEVEL": "WARNING",
            }

            out = work / "cli.zip"
            seconds, rss = measure(
                [KWIT, "archive", "--from", str(FIRST), "--to", str(LAST), "-o", str(out)], env
            )
            check(out, args.invoices)
            size = out.stat().st_size
            out.unlink()
            print(
                f"RESULT archive invoices={args.invoices} seconds={seconds:.1f} peak_rss_mb={rss:.0f} bytes={size} via=cli"
            )

            counted = work / "api.bytes"
            argv = [sys.executable, __file__, "--api-child", url, str(work / "blobs"), str(counted)]
            seconds, rss = measure(argv, env)
            size = int(counted.read_text())
            print(
                f"RESULT archive invoices={args.invoices} seconds={seconds:.1f} peak_rss_mb={rss:.0f} bytes={size} via=api"
            )


@contextmanager
def nullcontext_url(url: str) -> Iterator[str]:
    yield url


if __name__ == "__main__":
    main()

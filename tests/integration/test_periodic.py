"""The worker's periodic tasks: the sweeper and the once-a-day retention run."""

import redis as redis_lib
import sqlalchemy as sa

from models import AuditEntry, utcnow
from service.app import create_app
from service.worker import _daily_retention
from tests.support import make_settings


def test_daily_retention_runs_once_a_day_across_workers(pg_db, redis_url, queue_name, tmp_path):
    app = create_app(
        make_settings(
            pg_db, tmp_path, redis_url=redis_url, queue_name=queue_name, retention_daily=True
        )
    )
    rt = app.extensions["kwit"]
    key = f"kwit:retention-run:{utcnow().date().isoformat()}"
    redis_lib.Redis.from_url(redis_url).delete(key)
    try:
        _daily_retention(rt)
        _daily_retention(rt)  # a second worker the same day
        with rt.sessions() as session:
            runs = session.scalars(
                sa.select(AuditEntry).where(AuditEntry.action.like("retention.%"))
            ).all()
        assert [entry.actor for entry in runs] == ["worker"]
    finally:
        redis_lib.Redis.from_url(redis_url).delete(key)
        rt.close()


def test_daily_retention_is_off_unless_configured(pg_db, redis_url, tmp_path):
    app = create_app(make_settings(pg_db, tmp_path, redis_url=redis_url))
    rt = app.extensions["kwit"]
    try:
        _daily_retention(rt)
        with rt.sessions() as session:
            assert session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)) == 0
    finally:
        rt.close()


def test_paynow_sync_runs_at_once_then_waits_its_interval(sqlite_url, tmp_path, monkeypatch):
    from service import worker

    runs = []
    monkeypatch.setattr(worker, "paynow_sync_once", lambda rt: runs.append(rt))
    rt = create_app(make_settings(sqlite_url, tmp_path)).extensions["kwit"]
    try:
        loop = worker.Periodic(rt, paynow_every=3600)
        loop.paynow_sync()
        loop.paynow_sync()  # within the interval: skipped
        assert len(runs) == 1
        # The schedule belongs to the loop, not the module: another worker's loop runs at once.
        worker.Periodic(rt, paynow_every=3600).paynow_sync()
        assert len(runs) == 2
        loop.last_paynow_sync -= 3601
        loop.paynow_sync()
        assert len(runs) == 3
    finally:
        rt.close()

"""Enqueueing outbox ids on real Redis: no duplicates while waiting, recovery of orphaned jobs."""

import time

import redis as redis_lib
from rq import Queue
from rq.job import Job

from invoicing.queue import (
    enqueue_missing,
    enqueue_outbox,
    job_id,
    redis_client,
    safe_enqueue,
    safe_enqueue_missing,
)


def make_queue(redis_url: str, name: str) -> Queue:
    return Queue(name, connection=redis_lib.Redis.from_url(redis_url))


def test_waiting_job_is_not_enqueued_twice(redis_url, queue_name) -> None:
    queue = make_queue(redis_url, queue_name)
    assert enqueue_outbox(queue, "A1") is True
    assert enqueue_outbox(queue, "A1") is False
    assert queue.job_ids == [job_id("A1")]


def test_job_popped_by_a_killed_worker_is_enqueued_again(redis_url, queue_name) -> None:
    queue = make_queue(redis_url, queue_name)
    enqueue_outbox(queue, "B2")
    # A worker pops the id and dies before marking the job started: the hash still says queued.
    queue.connection.lrem(queue.key, 0, job_id("B2"))
    assert Job.fetch(job_id("B2"), connection=queue.connection).get_status() == "queued"
    assert enqueue_outbox(queue, "B2") is True
    assert queue.job_ids == [job_id("B2")]


def test_started_job_of_a_dead_worker_is_replaced(redis_url, queue_name) -> None:
    queue = make_queue(redis_url, queue_name)
    enqueue_outbox(queue, "C3")
    job = Job.fetch(job_id("C3"), connection=queue.connection)
    queue.connection.lrem(queue.key, 0, job.id)
    job.set_status("started")
    assert enqueue_outbox(queue, "C3") is True
    assert queue.job_ids == [job_id("C3")]


def test_redis_down_is_logged_not_raised_and_fails_fast(caplog) -> None:
    queue = Queue("nowhere", connection=redis_client("redis://127.0.0.1:1/3"))
    started = time.monotonic()
    assert safe_enqueue(queue, "D4") is False
    assert time.monotonic() - started < 1.5  # a webhook must not wait on a dead Redis
    assert "sweeper will pick the item up" in caplog.text


def test_fresh_outbox_id_is_enqueued_without_the_uniqueness_check(redis_url, queue_name) -> None:
    queue = make_queue(redis_url, queue_name)
    assert safe_enqueue(queue, "E5", fresh=True) is True
    assert queue.job_ids == [job_id("E5")]
    assert enqueue_outbox(queue, "E5") is False  # the sweeper still sees it waiting


def test_sweep_batch_enqueues_only_what_is_not_waiting(redis_url, queue_name) -> None:
    queue = make_queue(redis_url, queue_name)
    # Job hashes live outside the queue: ids unique to this run keep earlier runs out of it.
    w1, o2, n3 = (f"{name}-{queue_name}" for name in ("W1", "O2", "N3"))
    enqueue_outbox(queue, w1)  # waiting: left alone
    enqueue_outbox(queue, o2)
    queue.connection.lrem(queue.key, 0, job_id(o2))  # popped by a worker that then died
    # n3 was committed but its enqueue was lost (Redis flushed or down at the time).

    assert enqueue_missing(queue, [w1, o2, n3]) == 2

    assert sorted(queue.job_ids) == sorted(job_id(i) for i in (w1, o2, n3))
    assert enqueue_missing(queue, [w1, o2, n3]) == 0  # the next sweep finds all waiting


def test_sweep_batch_survives_redis_down(caplog) -> None:
    queue = Queue("nowhere", connection=redis_client("redis://127.0.0.1:1/3"))
    assert safe_enqueue_missing(queue, ["X1", "X2"]) == 0
    assert "the next sweep retries" in caplog.text


def test_job_fragment_left_after_a_flush_does_not_block_the_item(redis_url, queue_name) -> None:
    queue = make_queue(redis_url, queue_name)
    f6 = f"F6-{queue_name}"
    # Redis was flushed under a running job; its worker's next heartbeat recreated the hash
    # with that one field: not a job RQ can load, but enough for "already exists".
    queue.connection.hset(Job.key_for(job_id(f6)), "last_heartbeat", "2026-11-23T16:15:22Z")

    assert enqueue_missing(queue, [f6]) == 1

    assert queue.job_ids == [job_id(f6)]
    assert Job.fetch(job_id(f6), connection=queue.connection).args == (f6,)

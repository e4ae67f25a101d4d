"""Enqueue options in one place: job ids derived from outbox ids, duplicates suppressed."""

from __future__ import annotations

import contextlib
import logging

from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry
from rq import Queue
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job

log = logging.getLogger("kwit.queue")

JOB_FUNCTION = "invoicing.jobs.run_outbox_item"
JOB_TIMEOUT = 600  # seconds; jobs also bound their own HTTP calls


def redis_client(url: str) -> Redis:
    """A Redis client that fails fast: a webhook must never wait on Redis, the sweeper covers it.

    RQ workers raise the socket timeout themselves for their blocking dequeue.
    """
    return Redis.from_url(
        url,
        socket_connect_timeout=1.0,
        socket_timeout=2.0,
        retry=Retry(NoBackoff(), 1),
    )


def job_id(outbox_id: str) -> str:
    return f"outbox-{outbox_id}"


def enqueue_outbox(queue: Queue, outbox_id: str) -> bool:
    """Put the item on the queue unless it is already waiting there.

    Returns True when a job was enqueued. A finished, failed or orphaned job (its worker was
    killed) with the same id is replaced: the outbox claim decides whether any work happens.
    """
    # "Waiting" means the id is in the queue list. The job hash alone can lie: a worker
    # killed right after popping a job leaves it saying "queued" while nothing will run it.
    if queue.connection.lpos(queue.key, job_id(outbox_id)) is not None:
        return False
    _replace(queue, outbox_id)
    return True


def enqueue_missing(queue: Queue, outbox_ids: list[str]) -> int:
    """Enqueue those of `outbox_ids` that are not waiting in the queue; return how many.

    The sweeper's batch form of `enqueue_outbox`: one LRANGE answers "waiting?" for every id.
    Asking per id (an O(n) LPOS each) made a sweep over a backlog quadratic; profiling the
    invoice pipeline found the sweeper thread in a third of each worker's samples.
    """
    if not outbox_ids:
        return 0
    waiting = set(queue.connection.lrange(queue.key, 0, -1))
    missing = [oid for oid in outbox_ids if job_id(oid).encode() not in waiting]
    enqueued = 0
    for outbox_id in missing:
        try:
            _replace(queue, outbox_id)
            enqueued += 1
        except RedisError:
            raise  # Redis itself is in trouble: the whole sweep waits for the next round
        except Exception:
            # One item RQ cannot handle must not hold back every item due after it.
            log.exception("could not re-enqueue an outbox item", extra={"outbox_id": outbox_id})
    return enqueued


def _replace(queue: Queue, outbox_id: str) -> None:
    """Enqueue the item, dropping whatever an earlier run left under its job id."""
    try:
        _put(queue, outbox_id)
        return
    except DuplicateJobError:
        pass
    jid = job_id(outbox_id)
    try:
        Job.fetch(jid, connection=queue.connection).delete(remove_from_queue=True)
    except NoSuchJobError:
        # Not a job RQ can load, yet the key exists: a fragment such as the heartbeat a worker
        # wrote after Redis was flushed under its running job. Left alone, it would make every
        # later enqueue of this id a "duplicate" and strand the item (found by the chaos test).
        queue.connection.delete(Job.key_for(jid))
    with contextlib.suppress(DuplicateJobError):  # someone else re-enqueued it in between
        _put(queue, outbox_id)


def _put(queue: Queue, outbox_id: str, *, unique: bool = True) -> None:
    # result_ttl=0 drops the job hash on success, so the next enqueue of the id is not a duplicate.
    job = queue.create_job(
        JOB_FUNCTION,
        args=(outbox_id,),
        job_id=job_id(outbox_id),
        result_ttl=0,
        failure_ttl=86400,
        timeout=JOB_TIMEOUT,
    )
    if unique:
        queue.enqueue_job(job, unique=True)  # RQ's atomic check-and-push script
        return
    # One round trip instead of RQ's two: the queue registration, the job hash and the push
    # travel in one MULTI/EXEC (profiled: the enqueue was a fifth of a webhook request).
    with queue.connection.pipeline() as pipe:
        queue.enqueue_job(job, pipeline=pipe)
        pipe.execute()


def safe_enqueue(queue: Queue | None, outbox_id: str, *, fresh: bool = False) -> bool:
    """Enqueue after commit; a Redis failure is logged and left to the sweeper, never raised.

    `fresh` says the outbox row was created by the transaction that just committed, so no job
    for it can exist yet and RQ's uniqueness check (an extra Lua round trip) is skipped.
    """
    if queue is None:
        return False
    try:
        if fresh:
            _put(queue, outbox_id, unique=False)
            return True
        return enqueue_outbox(queue, outbox_id)
    except RedisError as exc:
        log.warning(
            "enqueue failed; the sweeper will pick the item up",
            extra={"outbox_id": outbox_id, "error": type(exc).__name__},
        )
        return False


def safe_enqueue_missing(queue: Queue, outbox_ids: list[str]) -> int:
    """`enqueue_missing` for the sweeper: a Redis failure is logged, and the next sweep retries."""
    try:
        return enqueue_missing(queue, outbox_ids)
    except RedisError as exc:
        log.warning(
            "sweep could not reach Redis; the next sweep retries",
            extra={"items": len(outbox_ids), "error": type(exc).__name__},
        )
        return 0

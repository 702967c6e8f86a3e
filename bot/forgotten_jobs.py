"""After /forget, the caption and attention-map jobs of the user's requests that have ended leave
Redis at once, with the attention maps' file ids.

A finished or failed job keeps the chat it answered (its meta) and, failed, a traceback for an
hour to a week; once the requests are gone nothing needs them. A job still queued, waiting for a
retry or in a worker's hands is left alone: it finds its request gone, ends quietly and drops
the chat it carried (worker/jobs.py), so no worker ever meets a job deleted under it.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence

from redis.exceptions import RedisError
from rq.job import Job, JobStatus

from service.runtime import caption_job_id
from service.attention_maps import attention_job_id, forget_attention_maps
from service.runtime import Runtime
from store.outages import first_line

log = logging.getLogger(__name__)
ENDED = (JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED)


def delete_ended_caption_jobs(runtime: Runtime, request_ids: Sequence[int], caption_ids: Sequence[int] = ()) -> int:
    """Delete the ended jobs of these requests and captions, and the captions' attention-map keys;
    returns how many jobs went. Redis being out is logged: the rows and photos are gone already,
    and the jobs and keys expire on their own."""
    job_ids = [caption_job_id(i) for i in request_ids] + [attention_job_id(i) for i in caption_ids]
    if not job_ids:
        return 0
    queue = runtime.captions_queue
    try:
        forget_attention_maps(queue.connection, caption_ids)
        jobs = Job.fetch_many(job_ids, connection=queue.connection, serializer=queue.serializer)
        ended = [job for job in jobs if job is not None and job.get_status(refresh=False) in ENDED]
        for job in ended:
            job.delete()
    except RedisError as error:
        log.warning("/forget: could not delete %d jobs from Redis (%s); they expire on their own",
                    len(job_ids), first_line(error))
        return 0
    return len(ended)

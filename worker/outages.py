"""Jobs that fail because Telegram, Redis or the database is out: one WARNING line per try.

Such a failure is expected (it is what the job's retries are for), so RQ's ERROR with a traceback
would only bury the failures that are bugs. The line names what failed and what happens next:
the retry, or, after the last try, what the job's failure callback does (`job.meta`).
"""
from __future__ import annotations

from rq.job import Job

from service.runtime import AFTER_LAST_TRY_META, RETRIES_META, STORAGE_OUTAGES
from store.outages import first_line
from worker.bot_api import BotApiUnavailable


def outage_of(error: BaseException | None) -> str | None:
    """"Telegram unavailable: getFile: HTTP 500" for an expected outage; None for anything else."""
    if isinstance(error, BotApiUnavailable):
        return f"Telegram unavailable: {error}"
    if isinstance(error, STORAGE_OUTAGES):
        return f"storage unavailable: {first_line(error)}"
    return None


def next_step(job: Job) -> str:
    """What happens after this failed try: "retry 2 of 3 in 2 s", or what the last failure brings."""
    if job.should_retry:
        interval = job.get_retry_interval()
        retries = job.meta.get(RETRIES_META)
        which = f"retry {retries - job.retries_left + 1} of {retries}" if retries else f"{job.retries_left} retries left, the next"
        return f"{which} in {interval} s" if interval else f"{which} now"
    return f"no retries left: {job.meta.get(AFTER_LAST_TRY_META, 'the job fails')}"


def outage_line(job: Job, outage: str) -> str:
    return f"job {job.id} ({job.description}): {outage}; {next_step(job)}"

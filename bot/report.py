"""/report (ADMIN_IDS): every model version judged by its users, as a chart with a summary.

The bot only queues the work: BLEU-4 / CIDEr-D against corrections and the chart need the
caption metrics and matplotlib, which the bot never loads, so the trainer makes the report and
sends it itself (worker/feedback_report.py), as it sends a retraining's report. A running
retraining holds the trainer; the admin is told the report follows it.
"""
from __future__ import annotations

import asyncio
import logging

from telegram import Update
from telegram.ext import ContextTypes

from bot import replies
from bot.admin import admins_only
from bot.state import runtime_of
from service.retrain_lock import RetrainLock
from service.runtime import REDIS_OUTAGES, Runtime
from store.outages import first_line

log = logging.getLogger(__name__)
REPORT_JOB = "worker.feedback_report.send_feedback_report"
# Scoring every version's corrections with the Java tokenizer and drawing one chart: minutes at most.
REPORT_TIMEOUT_S = 600


@admins_only
async def report(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    try:
        busy = await asyncio.to_thread(enqueue_report, runtime_of(context), update.effective_chat.id)
    except REDIS_OUTAGES as error:
        log.warning("could not queue the feedback report: %s; the admin is told", first_line(error))
        await update.effective_message.reply_text(replies.REPORT_NOT_QUEUED)
        return
    await update.effective_message.reply_text(replies.REPORT_AFTER_RETRAINING if busy else replies.REPORT_QUEUED)


def enqueue_report(runtime: Runtime, chat_id: int) -> bool:
    """Queue the trainer's report job for `chat_id`; True when a retraining is ahead of it.

    Raises RedisError when the queue is unreachable; nothing is queued then.
    """
    busy = RetrainLock(runtime.redis).holder() is not None
    runtime.training_queue.enqueue(
        REPORT_JOB,
        chat_id,
        description=f"feedback report for chat {chat_id}",
        job_timeout=REPORT_TIMEOUT_S,
        ttl=runtime.settings.retrain_queue_ttl_s,  # as long as a retraining may keep the trainer
        result_ttl=24 * 3600,
    )
    return busy

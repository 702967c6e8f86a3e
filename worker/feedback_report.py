"""The trainer's /report job: judge every model version by its users' feedback and send the admin
the chart as a photo whose caption sums up the numbers.

/report queues `send_feedback_report(chat_id)` on the "training" queue because BLEU-4 / CIDEr-D
against corrections need the caption metrics and the chart needs matplotlib, neither of which the
bot may load; the trainer may, and running it there keeps the caption workers on photos. The
chart is drawn in a temporary directory and deleted once sent: the database is the record.
"""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from store.db import session_scope
from worker import context as worker_context
from worker.bot_api import BotApiError

log = logging.getLogger(__name__)
NOT_SENT = "I couldn't make the feedback report: {reason}. The trainer's log has the details."


def send_feedback_report(chat_id: int) -> dict[str, Any]:
    """Build the report and send it to `chat_id`; returns what was sent (the job's JSON result)."""
    from worker.version_report import build_feedback_report, summarise

    ctx = worker_context.current()
    with tempfile.TemporaryDirectory(prefix="feedback-report-") as workdir:
        try:
            with session_scope(ctx.session_factory) as session:
                report = build_feedback_report(session, Path(workdir))
        except Exception as error:  # the admin hears why instead of waiting for a photo that never comes
            # Raised again: the worker logs it (one line for an outage, else the traceback).
            ctx.bot_api.send_message(chat_id, NOT_SENT.format(reason=error.__class__.__name__))
            raise
        caption = summarise(report)
        try:
            ctx.bot_api.send_photo(chat_id, report.chart.read_bytes(), report.chart.name, caption=caption)
        except BotApiError as error:
            log.warning("could not send the feedback report: %s", error)
            raise
    return {"versions": len(report.evaluations), "caption": caption}

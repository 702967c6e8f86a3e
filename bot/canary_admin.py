"""Canary commands (ADMIN_IDS): /canary VERSION PERCENT starts one (or, alone, shows how it
stands), /promote makes it active now; /rollback (bot.model_admin) ends it. After each stored
rating `settle_after_rating` lets the ratings decide and tells every admin with the numbers.
"""
from __future__ import annotations

import asyncio
import logging

from telegram import Bot, Update
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot import replies
from bot.admin import admins_only
from bot.state import runtime_of
from service.canary import CanaryStanding, canary_standing, promote_canary, settle_canary, start_canary
from service.model_versions import ActivationError
from service.runtime import STORAGE_OUTAGES, Runtime
from store.db import session_scope
from store.outages import first_line

log = logging.getLogger(__name__)


@admins_only
async def canary(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    runtime = runtime_of(context)
    if not context.args:
        answer = await asyncio.to_thread(describe_canary, runtime)
    else:
        answer = await asyncio.to_thread(begin_canary, runtime, context.args, update.effective_user.id)
    await update.effective_message.reply_text(answer)


@admins_only
async def promote(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await update.effective_message.reply_text(await asyncio.to_thread(promote_now, runtime_of(context)))


def begin_canary(runtime: Runtime, args: list[str], admin: int) -> str:
    """`/canary VERSION PERCENT`; returns the answer."""
    try:
        version, percent = args[0], float(args[1].rstrip("%"))
    except (IndexError, ValueError):
        return replies.CANARY_USAGE.format(example=args[0] if args else "VERSION")
    try:
        with session_scope(runtime.session_factory) as session:
            started = start_canary(session, version, percent / 100.0, started_by=admin)
            active = started.baseline_version
    except ActivationError as error:
        return replies.ACTIVATION_REFUSED.format(reason=str(error).rstrip("."))
    log.info("canary %s on %.0f%% of photos started by admin %s", version, percent, admin)
    return replies.CANARY_STARTED.format(version=version, percent=percent, active=active,
                                         min_ratings=runtime.settings.canary_min_ratings)


def describe_canary(runtime: Runtime) -> str:
    with session_scope(runtime.session_factory) as session:
        standing = canary_standing(session, runtime.settings)
    if standing is None:
        return replies.NO_CANARY
    return replies.CANARY_STANDING.format(version=standing.version, percent=standing.fraction * 100,
                                          active=standing.baseline_version, numbers=standing.describe())


def promote_now(runtime: Runtime) -> str:
    try:
        with session_scope(runtime.session_factory) as session:
            promoted = promote_canary(session, notes="promoted by an admin")
    except ActivationError as error:
        return replies.ACTIVATION_REFUSED.format(reason=str(error).rstrip("."))
    if promoted is None:
        return replies.NOTHING_TO_PROMOTE
    log.info("canary %s promoted by an admin (was %s)", *promoted)
    return replies.CANARY_PROMOTED.format(version=promoted[0], previous=promoted[1])


def settled_text(standing: CanaryStanding) -> str:
    template = replies.CANARY_SETTLED_PROMOTED if standing.decision.verdict == "promote" else replies.CANARY_SETTLED_ENDED
    return template.format(version=standing.version, active=standing.baseline_version, numbers=standing.describe())


async def settle_after_rating(bot: Bot, runtime: Runtime) -> None:
    """Decide the running canary if its ratings now suffice, and tell the admins. Never raises:
    the rating that triggered it is stored and answered already."""
    try:
        standing = await asyncio.to_thread(settle_canary, runtime.session_factory, runtime.settings)
    except STORAGE_OUTAGES as error:
        log.warning("could not settle the canary: %s; a later rating will", first_line(error))
        return
    except Exception:
        log.exception("could not settle the canary")
        return
    if standing is None:
        return
    text = settled_text(standing)
    for admin in runtime.settings.admin_ids:
        try:
            await bot.send_message(admin, text)
        except TelegramError as error:  # an admin who never wrote to the bot cannot be messaged
            log.warning("could not tell admin %s about the canary: %s", admin, error)


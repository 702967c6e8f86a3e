"""Each update handled once across webhook replicas, even when Telegram delivers it again.

Telegram POSTs an update again when its first POST got no 2xx answer in time, which can happen
after a replica had already queued it (the answer lost at the proxy, a slow network). The first
replica to see an update_id marks it in Redis; a replica that sees it again drops it before any
handler runs. Only webhook mode needs this: long polling confirms updates by offset.

While Redis is out nothing can be marked, and the update goes through: handling one twice is
better than dropping it.
"""
from __future__ import annotations

import asyncio
import logging

from redis import Redis
from telegram import Update
from telegram.ext import ApplicationHandlerStop, ContextTypes, TypeHandler

from bot.state import runtime_of
from service.runtime import REDIS_OUTAGES
from store.outages import first_line

log = logging.getLogger(__name__)
SEEN_KEY = "captionbot:update-seen:{bot_id}:{update_id}"
# Telegram gives up redelivering within hours; a day is ample and the keys clean themselves up.
SEEN_TTL_S = 24 * 3600
# Before every other handler group (handlers are in group 0).
SEEN_UPDATES_GROUP = -1


def first_sighting(redis: Redis, bot_id: int, update_id: int) -> bool:
    """Mark the update as seen; True only for the first caller, whichever process it is in."""
    key = SEEN_KEY.format(bot_id=bot_id, update_id=update_id)
    return bool(redis.set(key, 1, nx=True, ex=SEEN_TTL_S))


async def drop_seen_update(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Stops an update another replica (or this one) has already taken."""
    redis = runtime_of(context).redis
    try:
        first = await asyncio.to_thread(first_sighting, redis, context.bot.id, update.update_id)
    except REDIS_OUTAGES as error:
        log.warning("update %s not marked as seen (%s); it goes through", update.update_id, first_line(error))
        return
    if not first:
        log.info("update %s was delivered again; it was handled already", update.update_id)
        raise ApplicationHandlerStop


def seen_updates_handler() -> TypeHandler:
    return TypeHandler(Update, drop_seen_update)

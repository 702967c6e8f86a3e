"""Per-user limits on button presses and texts, checked before a handler reads or stores anything.

Try it: press a button more than BUTTON_RATE_LIMIT_PER_MINUTE times in a minute; the extra presses
are answered "slow down" and change nothing. Texts over TEXT_RATE_LIMIT_PER_MINUTE get one polite
answer (the first one over), then silence until the minute is over: a flood is not answered by a
flood. Either way nothing is stored.

While Redis is out the limits cannot be counted and let everything through: a 👍 needs only the
database, and a ✏️ is told what failed by its own handler.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TypeVar

from telegram import CallbackQuery, Message

from bot import metrics, replies
from bot.ratelimit import allow_button, text_over_limit
from service.runtime import REDIS_OUTAGES, Runtime
from store.outages import first_line

log = logging.getLogger(__name__)
Press = TypeVar("Press")


async def press_allowed(query: CallbackQuery, runtime: Runtime) -> bool:
    """Count the press; over the limit it is answered here (once, as every query must be)."""
    limit = runtime.settings.button_rate_limit_per_minute
    try:
        if await asyncio.to_thread(allow_button, runtime.redis, query.from_user.id, limit):
            return True
    except REDIS_OUTAGES as error:
        log.warning("button limit not counted (%s); the press goes through", first_line(error))
        return True
    metrics.refused("button_rate_limited")
    await query.answer(replies.BUTTONS_RATE_LIMITED)
    return False


async def accepted_press(
    query: CallbackQuery, runtime: Runtime, parse: Callable[[str | None], Press | None], refusal: str
) -> Press | None:
    """The press, parsed, if it is within the limit and its data is genuine; otherwise it has been
    answered (with `refusal` for forged or stale data) and the handler has nothing more to do."""
    if not await press_allowed(query, runtime):
        return None
    press = parse(query.data)
    if press is None or query.message is None:
        log.info("refused callback data %r from user %s", query.data, query.from_user.id)
        metrics.refused("stale_button")
        await query.answer(refusal)
        return None
    return press


async def text_allowed(message: Message, user_id: int, runtime: Runtime) -> bool:
    """Count the text; the first one over the limit is answered, later ones are not."""
    limit = runtime.settings.text_rate_limit_per_minute
    try:
        over = await asyncio.to_thread(text_over_limit, runtime.redis, user_id, limit)
    except REDIS_OUTAGES as error:
        log.warning("text limit not counted (%s); the text goes through", first_line(error))
        return True
    if over == 0:
        return True
    metrics.refused("text_rate_limited")
    if over == 1:
        log.info("user %s sent more than %s texts this minute; ignoring more until the next", user_id, limit)
        await message.reply_text(replies.TEXTS_RATE_LIMITED)
    return False

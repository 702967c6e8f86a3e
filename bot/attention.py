"""🔍 under a caption: a picture of where the model looked for each word, as a reply to the caption.

Try it: press 🔍 under a description. The first press queues the drawing on a caption worker (the
bot never loads the model), which sends the picture; later presses resend that picture at once.
A forged or stale press, another chat's caption, or a photo deleted by /forget is answered
politely and changes nothing. Presses count against BUTTON_RATE_LIMIT_PER_MINUTE like the others.
"""
from __future__ import annotations

import asyncio
import logging

from telegram import CallbackQuery, ReplyParameters, Update
from telegram.error import BadRequest
from telegram.ext import ContextTypes

from bot import replies
from bot.attention_requests import AttentionLookup, Lookup, forget_sent_map, look_up_attention_map, queue_attention_map
from bot.feedback import ButtonMessage
from bot.flood_guard import accepted_press
from bot.state import runtime_of
from service.attention_maps import attention_map_caption
from service.feedback_buttons import parse_attention_callback_data

log = logging.getLogger(__name__)


async def on_attention(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    runtime = runtime_of(context)
    press = await accepted_press(query, runtime, parse_attention_callback_data, replies.STALE_BUTTON)
    if press is None:
        return
    where = ButtonMessage(chat_id=query.message.chat.id, message_id=query.message.message_id)
    found = await asyncio.to_thread(look_up_attention_map, runtime, press.caption_id, where)
    if found.outcome is Lookup.stale:
        await query.answer(replies.STALE_BUTTON)
        return
    if found.outcome is Lookup.photo_gone:
        await query.answer(replies.ATTENTION_PHOTO_GONE)
        return
    if found.outcome is Lookup.sent_before and await _resend(query, context, where, press.caption_id, found):
        return
    queued = await asyncio.to_thread(queue_attention_map, runtime, press.caption_id, where.message_id)
    await query.answer(replies.ATTENTION_QUEUED if queued else replies.ATTENTION_UNDER_WAY)


async def _resend(query: CallbackQuery, context: ContextTypes.DEFAULT_TYPE, where: ButtonMessage,
                  caption_id: int, found: AttentionLookup) -> bool:
    """Send the picture drawn before; False (and the file forgotten) if Telegram no longer knows it."""
    try:
        await context.bot.send_photo(
            where.chat_id,
            found.file_id,
            caption=attention_map_caption(found.caption_text),
            reply_parameters=ReplyParameters(where.message_id, allow_sending_without_reply=True),
        )
    except BadRequest as error:
        log.warning("the attention map sent before was refused (%s); drawing it again", error)
        await asyncio.to_thread(forget_sent_map, runtime_of(context), caption_id)
        return False
    await query.answer()
    return True

"""Cancel under a ✏️ prompt: the prompt closes, so the user's next text is ordinary chat again.

Try it: press ✏️ under a description, then Cancel; a text sent afterwards gets the usual hint.
A forged or stale Cancel (the prompt answered, cancelled or expired already) is answered politely
and changes nothing.
"""
from __future__ import annotations

import asyncio

from telegram import Update
from telegram.ext import ContextTypes

from bot import replies
from bot.flood_guard import accepted_press
from bot.groups import in_group
from bot.prompts import cancel_prompt
from bot.state import runtime_of
from service.feedback_buttons import parse_cancel_callback_data


async def on_cancel(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    runtime = runtime_of(context)
    press = await accepted_press(query, runtime, parse_cancel_callback_data, replies.PROMPT_CLOSED)
    if press is None:
        return
    chat_id = query.message.chat.id
    closed = await asyncio.to_thread(
        cancel_prompt, runtime, chat_id, query.from_user.id, press.caption_id, press.prompt_token
    )
    if not closed:  # in a group, the press may be another member's
        await query.answer(replies.PROMPT_OF_ANOTHER_MEMBER if in_group(query.message.chat) else replies.PROMPT_CLOSED)
        return
    await query.answer()
    await query.edit_message_text(replies.CORRECTION_CANCELLED)

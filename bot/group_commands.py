"""/caption and /auto: asking for a caption in a group, and letting a group's admins have every
photo captioned.

Try it in a group: reply /caption to someone's photo and the caption answers that photo (asked
again, the bot points to that caption, or says it is on its way, instead of captioning twice). An admin
sends /auto on, and from then on every photo is captioned until /auto off; a member who is no
admin is told so. /caption also works in a private chat, as a reply to an earlier photo.
"""
from __future__ import annotations

import asyncio

from telegram import ChatMember, Message, ReplyParameters, Update
from telegram.ext import ContextTypes

from bot import replies
from bot.auto_captions import auto_captions_on, set_auto_captions
from bot.enqueue import StandingRequest, standing_request
from bot.groups import in_group
from bot.photos import submit_message
from bot.state import runtime_of

GROUP_ADMIN_STATUSES = (ChatMember.OWNER, ChatMember.ADMINISTRATOR)


async def caption(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Caption the photo this command replies to; the photo stays its sender's (their /forget
    deletes it), while the request counts against the rate limit of whoever asked."""
    message = update.effective_message
    photo = message.reply_to_message
    if photo is None or (not photo.photo and photo.document is None):
        await message.reply_text(replies.CAPTION_USAGE)
        return
    asker = update.effective_user.id
    owner = photo.from_user.id if photo.from_user is not None else asker
    earlier = await asyncio.to_thread(standing_request, runtime_of(context), owner, photo.chat_id, photo.message_id)
    if earlier is not None:
        await _point_to(message, earlier)
        return
    await submit_message(photo, owner, context, asked_by=asker)


async def _point_to(message: Message, earlier: StandingRequest) -> None:
    """Answer a second /caption by pointing to the first one's caption (replying to that message, so
    the chat quotes it; the words alone if it was deleted), or say it is on its way."""
    if not earlier.done:
        await message.reply_text(replies.ALREADY_CAPTIONING)
    elif earlier.reply_message_id is None:
        await message.reply_text(replies.ALREADY_CAPTIONED)
    else:
        await message.reply_text(replies.ALREADY_CAPTIONED, reply_parameters=ReplyParameters(
            earlier.reply_message_id, allow_sending_without_reply=True))


async def auto(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    chat = update.effective_chat
    if not in_group(chat):
        await message.reply_text(replies.AUTO_GROUPS_ONLY)
        return
    runtime = runtime_of(context)
    choice = context.args[0].lower() if len(context.args or []) == 1 else None
    if choice not in ("on", "off"):
        now_on = await asyncio.to_thread(auto_captions_on, runtime, chat.id)
        await message.reply_text(replies.AUTO_USAGE.format(state="on" if now_on else "off"))
        return
    if not await _group_admin(message, update.effective_user.id, context):
        await message.reply_text(replies.AUTO_ADMINS_ONLY)
        return
    await asyncio.to_thread(set_auto_captions, runtime, chat.id, choice == "on")
    await message.reply_text(replies.AUTO_ON if choice == "on" else replies.AUTO_OFF)


async def _group_admin(message: Message, user_id: int, context: ContextTypes.DEFAULT_TYPE) -> bool:
    """Whether the sender administers the group: Telegram's getChatMember says, or the message
    was sent as the group itself (an anonymous admin)."""
    if message.sender_chat is not None and message.sender_chat.id == message.chat_id:
        return True
    member = await context.bot.get_chat_member(message.chat_id, user_id)
    return member.status in GROUP_ADMIN_STATUSES

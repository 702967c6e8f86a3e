"""A real python-telegram-bot Application polling the sandbox, driven as a user through
SandboxClient: the same wiring the bot uses (ApplicationBuilder with base_url/base_file_url)."""
from __future__ import annotations

import asyncio
import time

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import (
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

USER = 5150


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await update.message.reply_text(f"you said: {update.message.text}", do_quote=True)


async def ask(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("yes", callback_data="yes"),
                                    InlineKeyboardButton("no", callback_data="no")]])
    await update.message.reply_text("Do you like it?", reply_markup=markup)


async def choose(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    await query.answer(f"noted: {query.data}")
    chosen = InlineKeyboardMarkup([[InlineKeyboardButton(f"✓ {query.data}", callback_data=query.data)]])
    await query.edit_message_reply_markup(reply_markup=chosen)


async def _drive_application(sandbox, client, scenario) -> None:
    app = (ApplicationBuilder().token(sandbox.token).base_url(sandbox.api_base)
           .base_file_url(sandbox.file_base).build())
    app.add_handlers([
        CommandHandler("ask", ask),
        MessageHandler(filters.TEXT & ~filters.COMMAND, echo),
        CallbackQueryHandler(choose),
    ])
    async with app:
        await app.start()
        await app.updater.start_polling(poll_interval=0.0, timeout=10)
        try:
            await asyncio.to_thread(scenario, client)
        finally:
            await app.updater.stop()
            await app.stop()


def test_application_echoes_a_text_promptly(sandbox, client):
    def scenario(client) -> None:
        started = time.monotonic()
        sent = client.send_text(USER, "hello bot")
        reply = client.wait_for_message(USER, lambda m: m["text"].startswith("you said"), timeout=10)
        assert reply["text"] == "you said: hello bot"
        assert reply["reply_to_message"]["message_id"] == sent["message_id"]
        assert time.monotonic() - started < 2  # the long poll returns on the update, not at timeout

    asyncio.run(_drive_application(sandbox, client, scenario))
    assert client.pending_updates() == []  # the Application confirmed what it handled


def test_application_answers_a_button_press_and_edits_the_keyboard(sandbox, client):
    def scenario(client) -> None:
        client.send_text(USER, "/ask")
        question = client.wait_for_message(USER, lambda m: "reply_markup" in m)
        query_id = client.press_button(USER, question["message_id"], "no")
        answer = client.wait_for_callback_answer(query_id)
        assert answer["text"] == "noted: no"
        edited = client.wait_for_message(
            USER, lambda m: m["reply_markup"]["inline_keyboard"][0][0]["text"] == "✓ no")
        assert edited["message_id"] == question["message_id"] and "edit_date" in edited

    asyncio.run(_drive_application(sandbox, client, scenario))

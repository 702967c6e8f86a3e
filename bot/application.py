"""The bot, assembled: reading `handlers()` tells you everything it reacts to.

Try it offline: `captionbot up` starts the sandbox Bot API, workers and this bot, and prints the
address of a chat page where you can send a photo.
"""
from __future__ import annotations

import logging

from telegram import BotCommand, BotCommandScopeAllGroupChats, Update
from telegram.ext import (
    Application,
    ApplicationBuilder,
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from bot import (
    admin,
    attention,
    canary_admin,
    commands,
    correction_prompt,
    corrections,
    feedback_admin,
    forget,
    group_commands,
    model_admin,
    photos,
    ratings,
    report,
)
from bot.errors import on_error
from bot.seen_updates import SEEN_UPDATES_GROUP, seen_updates_handler
from bot.state import attach_runtime
from bot.update_order import PerUserUpdateProcessor
from bot.webhook import webhook_options
from service.feedback_buttons import ATTENTION_DATA_PREFIX, CANCEL_DATA_PREFIX, FORGET_DATA_PREFIX
from service.health import Readiness, database_answers, redis_answers
from service.health_server import HealthServer, start_health_server
from service.runtime import Runtime, connect
from service.settings import Settings

log = logging.getLogger(__name__)
# Handlers wait on Redis and the database in threads; this many updates (of different users) may
# do so at once.
CONCURRENT_UPDATES = 16
# The menu's one-tap chips; /forget is not one (it deletes everything), /start and /help name it.
COMMANDS = [
    BotCommand("start", "what this bot does"),
    BotCommand("help", "how to use it"),
]
GROUP_COMMANDS = [
    BotCommand("caption", "describe the photo this replies to"),
    BotCommand("auto", "on|off: describe every photo in this group (admins)"),
    *COMMANDS,
]


def handlers() -> list[BaseHandler]:
    new_messages = filters.UpdateType.MESSAGE
    return [
        CommandHandler("start", commands.start),
        CommandHandler("help", commands.help_command),
        CommandHandler("forget", forget.forget),
        CommandHandler("caption", group_commands.caption),
        CommandHandler("auto", group_commands.auto),
        CommandHandler("stats", admin.stats),
        CommandHandler("model", admin.model),
        CommandHandler("models", model_admin.models),
        CommandHandler("retrain", model_admin.retrain),
        CommandHandler("rollback", model_admin.rollback),
        CommandHandler("canary", canary_admin.canary),
        CommandHandler("promote", canary_admin.promote),
        CommandHandler("report", report.report),
        CommandHandler("feedback", feedback_admin.feedback),
        CommandHandler("exclude", feedback_admin.exclude),
        CommandHandler("include", feedback_admin.include),
        MessageHandler(new_messages & (filters.PHOTO | filters.Document.ALL), photos.on_photo),
        CallbackQueryHandler(correction_prompt.on_cancel, pattern=CANCEL_DATA_PREFIX),
        CallbackQueryHandler(forget.on_answer, pattern=FORGET_DATA_PREFIX),
        CallbackQueryHandler(attention.on_attention, pattern=ATTENTION_DATA_PREFIX),
        CallbackQueryHandler(ratings.on_button),
        MessageHandler(new_messages & filters.TEXT & ~filters.COMMAND, corrections.on_text),
        MessageHandler(new_messages, corrections.on_anything_else),
    ]


def build_application(settings: Settings, runtime: Runtime | None = None) -> Application:
    """The Application talking to settings.telegram_api_url; it opens its own Runtime unless given one.

    A Runtime it opened is closed when the application shuts down; a given one stays the caller's.
    """
    if not settings.telegram_token:
        raise ValueError("the bot needs TELEGRAM_TOKEN (or the sandbox's token)")
    api_url = settings.telegram_api_url.rstrip("/")
    owns_runtime = runtime is None
    runtime = runtime or connect(settings)
    health: list[HealthServer] = []

    async def post_init(application: Application) -> None:
        await application.bot.set_my_commands(COMMANDS)
        await application.bot.set_my_commands(GROUP_COMMANDS, scope=BotCommandScopeAllGroupChats())
        server = start_health_server(settings.metrics_host, settings.metrics_port, bot_readiness(runtime))
        health.extend([server] if server is not None else [])

    async def post_shutdown(application: Application) -> None:
        for server in health:
            server.stop()
        if owns_runtime:
            runtime.close()

    application = (
        ApplicationBuilder()
        .token(settings.telegram_token)
        .base_url(f"{api_url}/bot")
        .base_file_url(f"{api_url}/file/bot")
        # Explicit, so no Bot API call waits longer than the settings say (getUpdates adds its
        # long-poll time to the read timeout by itself).
        .connect_timeout(settings.http_connect_timeout_s)
        .read_timeout(settings.http_timeout_s)
        .write_timeout(settings.http_timeout_s)
        .pool_timeout(settings.http_connect_timeout_s)
        .get_updates_connect_timeout(settings.http_connect_timeout_s)
        .get_updates_read_timeout(settings.http_timeout_s)
        .get_updates_write_timeout(settings.http_timeout_s)
        .get_updates_pool_timeout(settings.http_connect_timeout_s)
        .concurrent_updates(PerUserUpdateProcessor(CONCURRENT_UPDATES))
        .post_init(post_init)
        .post_shutdown(post_shutdown)
        .build()
    )
    attach_runtime(application, runtime)
    if webhook_options(settings) is not None:  # replicas, and Telegram's redeliveries
        application.add_handler(seen_updates_handler(), group=SEEN_UPDATES_GROUP)
    application.add_handlers(handlers())
    application.add_error_handler(on_error)
    return application


def bot_readiness(runtime: Runtime) -> Readiness:
    """Ready while Redis and the database answer: without them no photo can be queued."""
    readiness = Readiness()
    readiness.add_check("redis", redis_answers(runtime.redis))
    readiness.add_check("database", database_answers(runtime.engine))
    return readiness


def run_bot(settings: Settings) -> None:
    """Serve until Ctrl-C or SIGTERM (`captionbot bot`): long polling, or with TELEGRAM_WEBHOOK_URL
    set, python-telegram-bot's webhook server (one replica of several, docs/service.md)."""
    webhook = webhook_options(settings)  # unusable settings fail before anything connects
    application = build_application(settings)
    if webhook is None:
        log.info("bot polling %s", settings.telegram_api_url)
        application.run_polling(allowed_updates=Update.ALL_TYPES, drop_pending_updates=False)
        return
    log.info("bot serving the webhook %s on %s:%d", webhook.url, webhook.listen, webhook.port)
    application.run_webhook(**webhook.start_webhook_kwargs())

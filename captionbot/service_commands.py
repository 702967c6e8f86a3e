"""Service subcommands: up, bot, worker, migrate, sandbox."""
from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from service.settings import Settings


METRICS_PORT_HELP = "serve /metrics, /healthz and /readyz on this port (default: METRICS_PORT; 0: off)"


def register(commands: argparse._SubParsersAction) -> None:
    """Filled in with the service."""
    register_migrate(commands)
    register_service(commands)
    register_sandbox(commands)


def register_migrate(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "migrate", help="bring the database schema up to date (Alembic upgrade)"
    )
    parser.add_argument(
        "--database-url", help="database to migrate (default: DATABASE_URL or the SQLite file)"
    )
    parser.add_argument("--revision", default="head", help="schema revision to reach (default: head)")
    parser.set_defaults(handler=run_migrate)


def run_migrate(args: argparse.Namespace) -> int:
    """Apply the migrations; safe to run again, and run once before the bot and workers start."""
    from captionbot.database import shown_url
    from service.settings import get_settings
    from store.db import upgrade_database

    url = args.database_url or get_settings().resolved_database_url
    upgrade_database(url, args.revision)
    logging.getLogger(__name__).info("database %s is at revision %s", shown_url(url), args.revision)
    return 0


def register_service(commands: argparse._SubParsersAction) -> None:
    """`up`, `bot` and `worker`: the service's processes."""
    up = commands.add_parser("up", help="run everything on one machine (sandbox Bot API without TELEGRAM_TOKEN)")
    up.set_defaults(handler=run_up)
    bot = commands.add_parser("bot", help="run the Telegram bot (long polling, or a webhook replica)")
    bot.add_argument(
        "--webhook",
        metavar="URL",
        help="serve updates POSTed to this public URL instead of long polling (default: "
        "TELEGRAM_WEBHOOK_URL; needs TELEGRAM_WEBHOOK_SECRET)",
    )
    bot.add_argument("--metrics-port", type=int, help=METRICS_PORT_HELP)
    bot.set_defaults(handler=run_bot)
    worker = commands.add_parser("worker", help="run a worker: captions (loads the model) or training")
    worker.add_argument(
        "--queue",
        dest="queues",
        action="append",
        choices=["captions", "training"],
        help="queue to work (repeat for several; default: captions)",
    )
    worker.add_argument("--burst", action="store_true", help="quit when the queues are empty")
    worker.add_argument("--name", help="worker name shown in RQ (default: random)")
    worker.add_argument("--metrics-port", type=int, help=METRICS_PORT_HELP)
    worker.set_defaults(handler=run_worker)


def run_up(args: argparse.Namespace) -> int:
    from captionbot.one_machine import run_up as up
    from service.settings import get_settings

    return up(get_settings(), verbose=args.verbose)


def run_bot(args: argparse.Namespace) -> int:
    from bot.application import run_bot as run
    from bot.webhook import WebhookSettingsError, webhook_options
    from captionbot.database import require_current_schema
    from service.settings import get_settings

    settings = with_metrics_port(get_settings(), args.metrics_port)
    if args.webhook is not None:
        if not args.webhook.strip():
            logging.getLogger(__name__).error("--webhook needs the public URL Telegram sends updates to")
            return 2
        settings = settings.model_copy(update={"telegram_webhook_url": args.webhook.strip()})
    if not settings.telegram_token:
        logging.getLogger(__name__).error("set TELEGRAM_TOKEN, or use `captionbot up` for the local sandbox")
        return 2
    try:
        webhook_options(settings)
    except WebhookSettingsError as error:
        logging.getLogger(__name__).error("%s", error)
        return 2
    require_current_schema(settings)
    run(settings)
    return 0


def run_worker(args: argparse.Namespace) -> int:
    from captionbot.database import require_current_schema
    from service.settings import get_settings
    from worker.main import run_worker as run

    settings = with_metrics_port(get_settings(), args.metrics_port)
    require_current_schema(settings)
    run(settings, args.queues or ["captions"], burst=args.burst, name=args.name)
    return 0


def with_metrics_port(settings: Settings, port: int | None) -> Settings:
    """The settings, with --metrics-port over METRICS_PORT when given."""
    return settings if port is None else settings.model_copy(update={"metrics_port": port})


def register_sandbox(commands: argparse._SubParsersAction) -> None:
    """`sandbox`: the local Bot API stand-in alone, for pointing a bot at it by hand."""
    parser = commands.add_parser("sandbox", help="run the local sandbox Bot API and its chat page")
    parser.add_argument("--host", help="address to listen on (default: SANDBOX_HOST)")
    parser.add_argument("--port", type=int, help="port (default: SANDBOX_PORT; 0 picks a free one)")
    parser.add_argument("--token", help="the bot token it accepts (default: the sandbox token)")
    parser.set_defaults(handler=run_sandbox)


def run_sandbox(args: argparse.Namespace) -> int:
    """Serve in the foreground until Ctrl-C, printing where the chat page and the API are."""
    import signal
    import threading

    from captionbot.sandbox_start import start_sandbox
    from service.settings import get_settings
    from sandbox.server import DEFAULT_TOKEN

    settings = get_settings()
    host = args.host or settings.sandbox_host
    port = settings.sandbox_port if args.port is None else args.port
    server = start_sandbox(host, port, args.token or DEFAULT_TOKEN)
    print(f"Sandbox chat page: {server.url}/", flush=True)
    print(f"Point the bot at it: TELEGRAM_API_URL={server.url} TELEGRAM_TOKEN={server.token}", flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0

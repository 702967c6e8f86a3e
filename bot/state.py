"""Where handlers find the process's shared Runtime (Redis, queues, database, settings)."""
from __future__ import annotations

from telegram.ext import Application, ContextTypes

from service.runtime import Runtime

RUNTIME_KEY = "runtime"


def attach_runtime(application: Application, runtime: Runtime) -> None:
    application.bot_data[RUNTIME_KEY] = runtime


def runtime_of(context: ContextTypes.DEFAULT_TYPE) -> Runtime:
    return context.bot_data[RUNTIME_KEY]

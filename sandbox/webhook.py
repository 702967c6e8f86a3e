"""Webhooks in the sandbox: setWebhook, deleteWebhook and getWebhookInfo as Telegram answers them,
and delivery: while a webhook is set, each update is POSTed (JSON, with the
X-Telegram-Bot-Api-Secret-Token header) instead of waiting for getUpdates, which then answers
409 Conflict as Telegram does.

Updates go one at a time, oldest first; a delivery that gets no 2xx answer is kept and tried
again (on the next replica, if there are several), as Telegram retries. A sandbox-only control
endpoint, POST /sandbox/webhook/replicas, lists replica URLs to deliver to in turn instead of the
registered URL: the sandbox then plays the load balancer in front of several bot replicas.
"""
from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from sandbox.botapi import method
from sandbox.params import BotApiError, Params, bad_request, read_params
from sandbox.state import STATE, SandboxState
from sandbox.webhook_registration import (
    DEFAULT_MAX_CONNECTIONS,
    MAX_CONNECTIONS_RANGE,
    SECRET_TOKEN_SHAPE,
)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
DELIVERY_TIMEOUT_S = 10.0
RETRY_WAIT_S = 0.2  # after a failed delivery; Telegram waits longer, tests should not
IDLE_WAIT_S = 1.0
log = logging.getLogger(__name__)


def _webhook_url(value: str) -> str:
    """http or https with a host: the sandbox runs locally, so it does not insist on https."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
    return value


@method("setWebhook")
async def set_webhook(state: SandboxState, params: Params) -> bool:
    """An empty url removes the webhook, as Telegram's does."""
    url = (params.get_str("url", required=True) or "").strip()
    secret = params.get_str("secret_token") or None
    if secret is not None and not SECRET_TOKEN_SHAPE.fullmatch(secret):
        raise bad_request("bad webhook: secret token contains unallowed characters")
    max_connections = params.get_int("max_connections", DEFAULT_MAX_CONNECTIONS) or DEFAULT_MAX_CONNECTIONS
    low, high = MAX_CONNECTIONS_RANGE
    if not low <= max_connections <= high:
        raise bad_request("bad webhook: max_connections must be between 1 and 100")
    if params.get_bool("drop_pending_updates"):
        state.drop_pending()
    if not url:
        state.webhook.delete()
        return True
    allowed = params.get_json("allowed_updates")
    if allowed is not None:
        state.allowed_updates = list(allowed) or None
    state.webhook.set(_webhook_url(url), secret, max_connections)
    state.changed()  # wakes the delivery loop, and ends a waiting getUpdates with 409
    return True


@method("deleteWebhook")
async def delete_webhook(state: SandboxState, params: Params) -> bool:
    if params.get_bool("drop_pending_updates"):
        state.drop_pending()
    state.webhook.delete()
    return True


@method("getWebhookInfo")
async def get_webhook_info(state: SandboxState, params: Params) -> dict[str, Any]:
    return state.webhook.info(len(state.updates), state.allowed_updates)


# -- delivery ---------------------------------------------------------------------------------
async def _post(http: aiohttp.ClientSession, target: str, update: dict[str, Any],
                secret: str | None) -> tuple[int | None, str | None]:
    """(HTTP status, None) if answered with 2xx; else the status (None: no answer) and why."""
    headers = {"Content-Type": "application/json"}
    if secret:
        headers[SECRET_HEADER] = secret
    try:
        async with http.post(target, data=json.dumps(update), headers=headers) as response:
            await response.read()
            if 200 <= response.status < 300:
                return response.status, None
            return response.status, f"Wrong response from the webhook: {response.status} {response.reason}"
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
        return None, f"Connection failed: {type(error).__name__}: {error}"


async def deliver_updates(state: SandboxState, http: aiohttp.ClientSession) -> None:
    """Until the sandbox closes: POST the oldest pending update while a webhook is set."""
    while not state.closing:
        pending = state.deliverable(1) if state.webhook.active else []
        if not pending:
            await state.wait_for_change(IDLE_WAIT_S)
            continue
        update, registration = pending[0], state.webhook
        target = registration.next_target()
        status, error = await _post(http, target, update, registration.secret_token)
        registration.record(update["update_id"], target, status, error)
        if error is None:
            state.confirm(update["update_id"] + 1)
        else:
            log.info("webhook delivery of update %d to %s failed: %s", update["update_id"], target, error)
            await asyncio.sleep(RETRY_WAIT_S)


async def _delivery_context(app: web.Application) -> AsyncIterator[None]:
    """Runs deliver_updates beside the server for as long as it serves."""
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=DELIVERY_TIMEOUT_S))
    task = asyncio.create_task(deliver_updates(app[STATE], http))
    yield
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    await http.close()


# -- control API ------------------------------------------------------------------------------
async def webhook_state(request: web.Request) -> web.Response:
    """The registration as getWebhookInfo sees it, the replicas and every delivery attempt."""
    state = request.app[STATE]
    registration = state.webhook
    return web.json_response({
        "info": registration.info(len(state.updates), state.allowed_updates),
        "secret_token_set": registration.secret_token is not None,
        "replicas": registration.replicas,
        "deliveries": registration.deliveries,
    })


async def set_replicas(request: web.Request) -> web.Response:
    """JSON `urls`: the replicas to deliver to in turn (an empty list: the registered URL again)."""
    state = request.app[STATE]
    params = await read_params(request)
    urls = params.get_json("urls")
    if not isinstance(urls, list) or not all(isinstance(url, str) for url in urls):
        return web.json_response({"ok": False, "description": "urls must be a list of URLs"}, status=400)
    try:
        state.webhook.replicas = [_webhook_url(url) for url in urls]
    except BotApiError as error:
        return web.json_response({"ok": False, "description": error.description}, status=400)
    state.changed()
    return web.json_response({"replicas": state.webhook.replicas})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/sandbox/webhook", webhook_state)
    app.router.add_post("/sandbox/webhook/replicas", set_replicas)
    app.cleanup_ctx.append(_delivery_context)

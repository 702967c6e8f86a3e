"""The control API under /sandbox/: what a user does (send a photo, a document, text, press a
button, in their private chat or in a group) becomes an update for the bot; groups and their
members' statuses are set up here too; what the bot did (messages with edits applied, chat
actions, callback answers) can be read back. Tests use it through SandboxClient, the chat page
through fetch()."""
from __future__ import annotations

import json
import mimetypes
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from sandbox.entities import incoming_entities
from sandbox.markup import button_data
from sandbox.params import BotApiError, Params, bad_request, read_params
from sandbox.state import STATE, SandboxState, public

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
STATIC_DIR = Path(__file__).parent / "static"
MAX_WAIT = 30.0


def _state(request: web.Request) -> SandboxState:
    return request.app[STATE]


def _user_id(request: web.Request) -> int:
    try:
        return int(request.match_info["user_id"])
    except ValueError:
        raise bad_request("user id must be an integer") from None


def _deliver(state: SandboxState, request: web.Request, params: Params,
             content: dict[str, Any]) -> dict[str, Any]:
    """Store the user's message in their private chat (or the group `chat_id`) and queue it as
    an update for the bot."""
    record, sender = state.sender_chat(_user_id(request), params.get_int("chat_id"),
                                       params.get_str("first_name"), params.get_str("username"))
    message = state.add_message(record, sender, content,
                                reply_to=params.get_int("reply_to_message_id"))
    state.push_update("message", message)
    return public(message)


def _caption(params: Params, content: dict[str, Any]) -> dict[str, Any]:
    caption = params.get_str("caption")
    if caption:
        content["caption"] = caption
        if entities := incoming_entities(caption):
            content["caption_entities"] = entities
    return content


async def user_photo(request: web.Request) -> dict[str, Any]:
    state, params = _state(request), await read_params(request)
    upload = params.uploads.get("photo")
    if upload is None:
        raise bad_request("send the image as the multipart file field \"photo\"")
    content = _caption(params, {"photo": state.store_photo(upload.data)})
    return _deliver(state, request, params, content)


async def user_document(request: web.Request) -> dict[str, Any]:
    state, params = _state(request), await read_params(request)
    upload = params.uploads.get("document")
    if upload is None:
        raise bad_request("send the file as the multipart file field \"document\"")
    filename = params.get_str("filename") or upload.filename or "file"
    mime_type = (params.get_str("mime_type") or upload.content_type
                 or mimetypes.guess_type(filename)[0] or "application/octet-stream")
    document = state.store_document(upload.data, filename, mime_type)
    return _deliver(state, request, params, _caption(params, {"document": document}))


async def user_text(request: web.Request) -> dict[str, Any]:
    state, params = _state(request), await read_params(request)
    text = params.get_str("text") or ""
    if not text.strip():
        raise bad_request("message text is empty")
    content: dict[str, Any] = {"text": text}
    if entities := incoming_entities(text):
        content["entities"] = entities
    return _deliver(state, request, params, content)


async def user_press(request: web.Request) -> dict[str, Any]:
    """A button press. Data not on the message's keyboard is refused unless forge is set,
    so a test that means to forge says so and a test that presses a stale button learns it."""
    state, params = _state(request), await read_params(request)
    user_id, chat_id = _user_id(request), params.get_int("chat_id")
    state.chat(user_id if chat_id is None else chat_id)  # a press needs a chat with a message
    record, user = state.sender_chat(user_id, chat_id)
    message = record.find(params.get_int("message_id", required=True) or 0)
    if message is None or not message["from"]["is_bot"]:
        raise bad_request("no bot message with that message_id in this chat")
    data = params.get_str("callback_data", required=True) or ""
    if not params.get_bool("forge") and data not in button_data(message):
        raise bad_request(
            f"callback_data {data!r} is not on the message's keyboard {button_data(message)}; "
            "pass forge=true to send it anyway"
        )
    query = state.new_callback_query(record, user, message, data)
    state.push_update("callback_query", query)
    return {"callback_query_id": query["id"]}


async def create_group(request: web.Request) -> dict[str, Any]:
    """A group with the bot in it (JSON `chat_id` < 0, `title`, `type` group|supergroup); again
    with the same id it returns the group as it is."""
    state, params = _state(request), await read_params(request)
    record = state.ensure_group(params.get_int("chat_id", required=True) or 0,
                                params.get_str("title"), params.get_str("type") or "group")
    return {"chat": record.chat, "members": record.statuses}


async def set_member(request: web.Request) -> dict[str, Any]:
    """A user's status in a group (creator, administrator, member, left, kicked), as
    getChatMember will report it."""
    state, params = _state(request), await read_params(request)
    record = state.chat(int(request.match_info["chat_id"]))
    user = state.ensure_user(params.get_int("user_id", required=True) or 0,
                             params.get_str("first_name"), params.get_str("username"))
    state.set_member(record, user, params.get_str("status") or "member")
    return {"chat": record.chat, "members": record.statuses}


async def chat_info(request: web.Request) -> dict[str, Any]:
    """The chat and, for a group, its members with their users and statuses."""
    state = _state(request)
    record = state.chat(int(request.match_info["chat_id"]))
    members = [{"user": state.users[user_id], "status": status}
               for user_id, status in record.statuses.items()]
    return {"chat": record.chat, "members": members}


async def chat_messages(request: web.Request) -> dict[str, Any]:
    """The chat's messages (the bot's only, unless all=1); with after_version, a long poll that
    answers once what it shows changed after that version: with all=1 anything in this chat (a
    message, an edit, a deletion, a chat action, a member's status), else the bot's messages in it;
    a reset changes every chat."""
    state = _state(request)
    params = Params(values=dict(request.query))
    chat_id = int(request.match_info["chat_id"])
    after = params.get_int("after_version")
    include_user = params.get_bool("all")
    if after is not None:
        timeout = min(params.get_float("timeout", 10.0), MAX_WAIT)
        await state.wait_for_chat_change(chat_id, after, timeout, bot_messages=not include_user)
    record = state.chats.get(chat_id)
    messages = record.messages if record else []
    if not include_user:
        messages = [m for m in messages if m["from"]["is_bot"]]
    return {
        "version": state.version,
        "messages": messages,
        "last_action": record.actions[-1] if record and record.actions else None,
    }


async def chat_actions(request: web.Request) -> list[dict[str, Any]]:
    record = _state(request).chats.get(int(request.match_info["chat_id"]))
    return record.actions if record else []


async def callback_answers(request: web.Request) -> list[dict[str, Any]]:
    answers = _state(request).callback_answers
    query_id = request.query.get("callback_query_id")
    return [a for a in answers if query_id is None or a["callback_query_id"] == query_id]


async def pending_updates(request: web.Request) -> list[dict[str, Any]]:
    return _state(request).updates


def _scope_key(kind: str) -> str:
    return json.dumps({"type": kind}, sort_keys=True) + "|"


async def bot_info(request: web.Request) -> dict[str, Any]:
    """getMe, the default commands, those for groups (the default ones unless set), the description."""
    state = _state(request)
    default = state.commands.get(_scope_key("default"), [])
    return {"bot": state.bot_user, "commands": default,
            "group_commands": state.commands.get(_scope_key("all_group_chats"), default),
            "description": state.description}


async def reset(request: web.Request) -> dict[str, Any]:
    _state(request).reset()
    return {"reset": True}


async def file_content(request: web.Request) -> web.Response:
    """A file's bytes for the chat page, which does not know the bot's token."""
    stored = _state(request).files.get(request.match_info["file_id"])
    if stored is None:
        raise web.HTTPNotFound()
    content_type = mimetypes.guess_type(stored.file_path)[0] or "application/octet-stream"
    return web.Response(body=stored.data, content_type=content_type)


def _json_endpoint(func: Callable[[web.Request], Awaitable[Any]]) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        try:
            result = await func(request)
        except BotApiError as exc:
            return web.json_response({"ok": False, "description": exc.description},
                                     status=exc.error_code)
        return web.json_response(result)
    return handler


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "index.html")


def add_routes(app: web.Application) -> None:
    routes = [
        ("POST", "/sandbox/users/{user_id}/photo", user_photo),
        ("POST", "/sandbox/users/{user_id}/document", user_document),
        ("POST", "/sandbox/users/{user_id}/text", user_text),
        ("POST", "/sandbox/users/{user_id}/press", user_press),
        ("POST", "/sandbox/groups", create_group),
        ("POST", "/sandbox/chats/{chat_id:-?\\d+}/members", set_member),
        ("GET", "/sandbox/chats/{chat_id:-?\\d+}", chat_info),
        ("GET", "/sandbox/chats/{chat_id:-?\\d+}/messages", chat_messages),
        ("GET", "/sandbox/chats/{chat_id:-?\\d+}/actions", chat_actions),
        ("GET", "/sandbox/callback_answers", callback_answers),
        ("GET", "/sandbox/updates", pending_updates),
        ("GET", "/sandbox/bot", bot_info),
        ("POST", "/sandbox/reset", reset),
    ]
    for http_method, path, func in routes:
        app.router.add_route(http_method, path, _json_endpoint(func))
    app.router.add_get("/sandbox/files/{file_id}", file_content)
    app.router.add_get("/", index)
    app.router.add_static("/static/", STATIC_DIR)

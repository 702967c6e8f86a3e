"""The Bot API methods the bot and the workers call, at /bot<token>/<method>, answered with
Telegram's envelope and error descriptions, so python-telegram-bot behaves as against Telegram."""
from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from sandbox.entities import format_text, utf16_len
from sandbox.markup import split_reply_markup
from sandbox.params import BotApiError, Params, bad_request, read_params
from sandbox.state import STATE, SandboxState, now, public

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_POLL_TIMEOUT = 50.0
GET_FILE_LIMIT = 20 * 1024 * 1024  # the Bot API's download limit
CHAT_ACTIONS = {
    "typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice",
    "upload_document", "choose_sticker", "find_location", "record_video_note",
    "upload_video_note",
}
WEBHOOK_CONFLICT = ("Conflict: can't use getUpdates method while webhook is active; "
                    "use deleteWebhook to delete the webhook first")
_TOKEN_SHAPE = re.compile(r"^\d+:[A-Za-z0-9_-]+$")

Method = Callable[[SandboxState, Params], Awaitable[Any]]
METHODS: dict[str, Method] = {}


def method(*names: str) -> Callable[[Method], Method]:
    def register(func: Method) -> Method:
        for name in names:
            METHODS[name.lower()] = func
        return func
    return register


def _text(params: Params, name: str, limit: int, *, required: bool) -> tuple[str, list]:
    raw = params.get_str(name) or ""
    entities_name = "entities" if name == "text" else "caption_entities"
    text, entities = format_text(raw, params.get_str("parse_mode"), params.get_json(entities_name))
    if required and not text.strip():
        raise bad_request("message text is empty")
    if utf16_len(text) > limit:
        raise bad_request("message is too long" if name == "text" else "message caption is too long")
    return text, entities


def _reply_target(params: Params) -> tuple[int | None, bool]:
    reply = params.get_json("reply_parameters") or {}
    message_id = reply.get("message_id") if isinstance(reply, dict) else None
    allow = bool(reply.get("allow_sending_without_reply")) if isinstance(reply, dict) else False
    if message_id is None:
        message_id = params.get_int("reply_to_message_id")
        allow = params.get_bool("allow_sending_without_reply")
    return message_id, allow


async def _send(state: SandboxState, params: Params, content: dict[str, Any],
                parse_mode: str | None = None) -> dict[str, Any]:
    record = state.chat(params.get_int("chat_id", required=True))
    inline, other = split_reply_markup(params.get_json("reply_markup"))
    if inline is not None:
        content["reply_markup"] = inline
    reply_to, allow = _reply_target(params)
    extra = {"parse_mode": parse_mode, "reply_markup": other}
    message = state.add_message(record, state.bot_user, content, reply_to, allow, extra)
    return public(message)


@method("getMe")
async def get_me(state: SandboxState, params: Params) -> dict[str, Any]:
    return dict(state.bot_user)


@method("logOut", "close")
async def no_op(state: SandboxState, params: Params) -> bool:
    return True


@method("getUpdates")
async def get_updates(state: SandboxState, params: Params) -> list[dict[str, Any]]:
    if state.webhook.active:
        raise BotApiError(WEBHOOK_CONFLICT, 409)
    limit = min(max(params.get_int("limit", 100) or 100, 1), 100)
    timeout = min(params.get_float("timeout", 0.0), MAX_POLL_TIMEOUT)
    allowed = params.get_json("allowed_updates")
    return await state.get_updates(params.get_int("offset"), limit, timeout, allowed)


def _scope_key(params: Params) -> str:
    scope = params.get_json("scope") or {"type": "default"}
    return json.dumps(scope, sort_keys=True) + "|" + (params.get_str("language_code") or "")


@method("setMyCommands")
async def set_my_commands(state: SandboxState, params: Params) -> bool:
    commands = params.get_json("commands")
    if not isinstance(commands, list) or not all(
        isinstance(c, dict) and c.get("command") and c.get("description") for c in commands
    ):
        raise bad_request("can't parse commands JSON object")
    state.commands[_scope_key(params)] = [
        {"command": c["command"], "description": c["description"]} for c in commands
    ]
    state.changed()
    return True


@method("getMyCommands")
async def get_my_commands(state: SandboxState, params: Params) -> list[dict[str, str]]:
    return list(state.commands.get(_scope_key(params), []))


@method("deleteMyCommands")
async def delete_my_commands(state: SandboxState, params: Params) -> bool:
    state.commands.pop(_scope_key(params), None)
    return True


@method("setMyDescription", "setMyShortDescription")
async def set_my_description(state: SandboxState, params: Params) -> bool:
    if "description" in params.values:
        state.description = params.get_str("description") or ""
    else:
        state.short_description = params.get_str("short_description") or ""
    return True


@method("getMyDescription")
async def get_my_description(state: SandboxState, params: Params) -> dict[str, str]:
    return {"description": state.description}


@method("getMyShortDescription")
async def get_my_short_description(state: SandboxState, params: Params) -> dict[str, str]:
    return {"short_description": state.short_description}


@method("setChatMenuButton")
async def set_chat_menu_button(state: SandboxState, params: Params) -> bool:
    return True


@method("getChatMember")
async def get_chat_member(state: SandboxState, params: Params) -> dict[str, Any]:
    return state.member(params.get_int("chat_id", required=True),
                        params.get_int("user_id", required=True))


@method("getFile")
async def get_file(state: SandboxState, params: Params) -> dict[str, Any]:
    stored = state.file(params.get_str("file_id", required=True))
    result = {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id,
              "file_size": stored.size}
    if stored.size > GET_FILE_LIMIT:
        raise bad_request("file is too big")
    result["file_path"] = stored.file_path
    return result


@method("sendMessage")
async def send_message(state: SandboxState, params: Params) -> dict[str, Any]:
    text, entities = _text(params, "text", MAX_TEXT, required=True)
    content: dict[str, Any] = {"text": text}
    if entities:
        content["entities"] = entities
    return await _send(state, params, content, params.get_str("parse_mode"))


def _upload(params: Params, name: str) -> tuple[bytes, str, str] | str:
    """The bytes of an uploaded file (with name and type), or the file_id it refers to."""
    upload = params.uploads.get(name)
    value = params.get_str(name)
    if upload is None and value and value.startswith("attach://"):
        upload = params.uploads.get(value[len("attach://"):])
    if upload is not None:
        return upload.data, upload.filename, upload.content_type
    if not value:
        raise bad_request(f"there is no {name} in the request")
    if value.startswith(("http://", "https://")):
        raise bad_request("wrong file identifier/HTTP URL specified")
    return value


async def _send_media(state: SandboxState, params: Params, kind: str) -> dict[str, Any]:
    caption, entities = _text(params, "caption", MAX_CAPTION, required=False)
    source = _upload(params, kind)
    if kind == "photo":
        if isinstance(source, str):
            state.file(source)
            sizes = state.photo_sizes.get(source)
            if sizes is None:
                raise bad_request("wrong file identifier/HTTP URL specified")
        elif (sizes := state.store_photo(source[0]))[-1]["width"] == 0:
            raise bad_request("IMAGE_PROCESS_FAILED")
        content: dict[str, Any] = {"photo": sizes}
    elif isinstance(source, str):
        stored = state.file(source)
        content = {"document": dict(state.documents.get(source) or {
            "file_id": stored.file_id, "file_unique_id": stored.file_unique_id,
            "file_size": stored.size})}
    else:
        data, filename, mime_type = source
        content = {"document": state.store_document(data, filename, mime_type)}
    if caption:
        content["caption"] = caption
    if entities:
        content["caption_entities"] = entities
    return await _send(state, params, content, params.get_str("parse_mode"))


@method("sendPhoto")
async def send_photo(state: SandboxState, params: Params) -> dict[str, Any]:
    return await _send_media(state, params, "photo")


@method("sendDocument")
async def send_document(state: SandboxState, params: Params) -> dict[str, Any]:
    return await _send_media(state, params, "document")


@method("sendChatAction")
async def send_chat_action(state: SandboxState, params: Params) -> bool:
    action = params.get_str("action") or ""
    if action not in CHAT_ACTIONS:
        raise bad_request("wrong parameter action in request")
    state.add_action(params.get_int("chat_id", required=True), action)
    return True


def _editable(state: SandboxState, params: Params) -> dict[str, Any]:
    if params.has("inline_message_id"):
        raise bad_request("MESSAGE_ID_INVALID")
    _, message = state.bot_message(params.get_int("chat_id"), params.get_int("message_id"))
    if not message["from"]["is_bot"]:
        raise bad_request("message can't be edited")
    return message


def _apply_edit(state: SandboxState, message: dict[str, Any], changes: dict[str, Any]) -> Any:
    """Apply changes (None removes a field), refusing an edit that changes nothing."""
    if all(message.get(key) == (value or None) for key, value in changes.items()):
        raise bad_request(
            "message is not modified: specified new message content and reply markup are "
            "exactly the same as a current content and reply markup of the message"
        )
    for key, value in changes.items():
        if value:
            message[key] = value
        else:
            message.pop(key, None)
    message["edit_date"] = now()
    state.changed(state.chats.get(message["chat"]["id"]), bot_message=True)
    return public(message)


def _inline_markup(params: Params) -> dict[str, Any] | None:
    inline, other = split_reply_markup(params.get_json("reply_markup"))
    if other is not None:
        raise bad_request("inline keyboard expected")
    return inline


@method("editMessageText")
async def edit_message_text(state: SandboxState, params: Params) -> Any:
    message = _editable(state, params)
    if "text" not in message:
        raise bad_request("there is no text in the message to edit")
    text, entities = _text(params, "text", MAX_TEXT, required=True)
    changes = {"text": text, "entities": entities, "reply_markup": _inline_markup(params)}
    edited = _apply_edit(state, message, changes)
    message["sandbox"]["parse_mode"] = params.get_str("parse_mode")
    return edited


@method("editMessageCaption")
async def edit_message_caption(state: SandboxState, params: Params) -> Any:
    message = _editable(state, params)
    if "photo" not in message and "document" not in message:
        raise bad_request("there is no caption in the message to edit")
    caption, entities = _text(params, "caption", MAX_CAPTION, required=False)
    changes = {"caption": caption, "caption_entities": entities,
               "reply_markup": _inline_markup(params)}
    return _apply_edit(state, message, changes)


@method("editMessageReplyMarkup")
async def edit_message_reply_markup(state: SandboxState, params: Params) -> Any:
    message = _editable(state, params)
    return _apply_edit(state, message, {"reply_markup": _inline_markup(params)})


@method("deleteMessage")
async def delete_message(state: SandboxState, params: Params) -> bool:
    state.delete_message(params.get_int("chat_id", required=True), params.get_int("message_id"))
    return True


@method("answerCallbackQuery")
async def answer_callback_query(state: SandboxState, params: Params) -> bool:
    text = params.get_str("text")
    if text is not None and len(text) > 200:
        raise bad_request("MESSAGE_TOO_LONG")
    state.answer_callback(params.get_str("callback_query_id"), {
        "text": text,
        "show_alert": params.get_bool("show_alert"),
        "url": params.get_str("url"),
        "cache_time": params.get_int("cache_time", 0),
    })
    return True


def _error(exc: BotApiError) -> web.Response:
    return web.json_response(
        {"ok": False, "error_code": exc.error_code, "description": exc.description},
        status=exc.error_code,
    )


def _check_token(state: SandboxState, token: str) -> None:
    if token != state.token:
        if _TOKEN_SHAPE.match(token):
            raise BotApiError("Unauthorized", 401)
        raise BotApiError("Not Found", 404)


async def handle_method(request: web.Request) -> web.Response:
    """One Bot API call: the token checked, the parameters read, the method run."""
    state = request.app[STATE]
    try:
        _check_token(state, request.match_info["token"])
        func = METHODS.get(request.match_info["method"].lower())
        if func is None:
            raise BotApiError("Not Found", 404)
        result = await func(state, await read_params(request))
    except BotApiError as exc:
        return _error(exc)
    return web.json_response({"ok": True, "result": result})


async def handle_file(request: web.Request) -> web.StreamResponse:
    """The file download URL Telegram gives for a file_path."""
    state = request.app[STATE]
    try:
        _check_token(state, request.match_info["token"])
    except BotApiError as exc:
        return _error(exc)
    stored = state.files_by_path.get(request.match_info["file_path"])
    if stored is None or stored.size > GET_FILE_LIMIT:
        return _error(BotApiError("Not Found", 404))
    return web.Response(body=stored.data, content_type="application/octet-stream")


def add_routes(app: web.Application) -> None:
    app.router.add_route("*", "/bot{token}/{method}", handle_method)
    app.router.add_get("/file/bot{token}/{file_path:.+}", handle_file)

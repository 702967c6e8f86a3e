"""ChatMember objects as getChatMember returns them, with every field python-telegram-bot
requires for each status (it refuses an administrator without its permission flags)."""
from __future__ import annotations

import copy
from typing import Any

MEMBER_STATUSES = ("creator", "administrator", "member", "left", "kicked")
_ADMIN_RIGHTS = (
    "can_manage_chat", "can_delete_messages", "can_manage_video_chats", "can_restrict_members",
    "can_promote_members", "can_change_info", "can_invite_users", "can_post_stories",
    "can_edit_stories", "can_delete_stories", "can_pin_messages",
)


def chat_member(user: dict[str, Any], status: str) -> dict[str, Any]:
    member: dict[str, Any] = {"status": status, "user": copy.deepcopy(user)}
    if status == "creator":
        member["is_anonymous"] = False
    elif status == "administrator":
        member.update(can_be_edited=False, is_anonymous=False)
        member.update({right: True for right in _ADMIN_RIGHTS})
    elif status == "kicked":
        member["until_date"] = 0
    return member

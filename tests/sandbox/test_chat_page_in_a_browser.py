"""The chat page as a person uses it: headless Chromium (Debian's `chromium`, driven by Playwright)
on the sandbox, with the real bot and a real worker behind it. Photos go in through the page's file
input, buttons are clicked, corrections typed; what the page shows is checked by its geometry."""
from __future__ import annotations

import itertools
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from service_stack import SANDBOX_TOKEN, jpeg_bytes
from sqlalchemy import select

from store.models import Correction, Rating

try:
    from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright
except ImportError as error:  # a clear failure, not a skip: CI must run this test
    raise ImportError("Playwright is missing: install the test extras (bash scripts/setup.sh)") from error

VIEWPORT = {"width": 800, "height": 600}  # small, so that a few photos overflow the chat
_user_ids = itertools.count(7001)


@pytest.fixture
def stack(serving):
    """The run's shared service (tests/conftest.py): the sandbox, the real bot, one caption worker."""
    return serving


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless; its absence fails the module (scripts/services.sh installs it)."""
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.fail("Debian's chromium is not on PATH: bash scripts/test.sh installs it (scripts/services.sh)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True)
        yield browser
        browser.close()


@dataclass
class ChatPage:
    """One user's chat page, and every console error or uncaught exception it produced."""

    page: Page
    user_id: int
    errors: list[str] = field(default_factory=list)

    def send_photo(self, data: bytes, name: str = "photo.jpg") -> None:
        """Pick a file with the paperclip, as a person does; the page sends it as a photo."""
        self.page.set_input_files("#file", files=[{"name": name, "mimeType": "image/jpeg", "buffer": data}])

    def captions(self) -> Locator:
        """The bot's messages that carry the 👍 👎 ✏️ keyboard, oldest first."""
        return self.page.locator("#messages .row.theirs").filter(has=self.page.locator(".keyboard"))

    def settle(self) -> None:
        """Wait until every image has loaded or failed and the page has drawn twice since."""
        self.page.wait_for_function("[...document.images].every((image) => image.complete)")
        self.page.evaluate("new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")

    def newest_is_in_view(self) -> bool:
        """Whether the last message's box lies inside both the chat's visible area and the window."""
        return self.page.evaluate("""() => {
            const rows = document.querySelectorAll("#messages .row");
            const box = rows[rows.length - 1].getBoundingClientRect();
            const chat = document.getElementById("chat").getBoundingClientRect();
            return box.top >= chat.top - 1 && box.bottom <= chat.bottom + 1
                && box.top >= 0 && box.bottom <= window.innerHeight;
        }""")


@pytest.fixture
def chat(browser, stack) -> Iterator[ChatPage]:
    """A fresh page for a user of its own (rate limits and data never mix between tests).

    The browser comes first, so a missing Chromium fails before the service starts.
    """
    user_id = next(_user_ids)
    page = browser.new_page(viewport=VIEWPORT)
    chat = ChatPage(page, user_id)
    page.on("console", lambda message: message.type == "error" and chat.errors.append(message.text))
    page.on("pageerror", lambda error: chat.errors.append(str(error)))
    page.goto(f"{stack.sandbox.url}/?user={user_id}")
    expect(page.locator("#bot-name")).to_have_text("CaptionBot")
    yield chat
    page.close()


def test_a_photo_sent_from_the_page_is_captioned_rated_corrected_and_its_attention_map_shown(stack, chat):
    page = chat.page
    chat.send_photo(jpeg_bytes(seed=11))
    caption = chat.captions().first
    expect(caption.locator(".keyboard button")).to_have_text(["👍", "👎", "✏️", "🔍"], timeout=30_000)
    chat.settle()
    assert chat.newest_is_in_view()

    caption.get_by_role("button", name="👍").click()
    expect(caption.locator(".keyboard button").first).to_have_text("👍 ✓")
    with stack.session() as session:
        assert session.scalars(select(Rating.value).where(Rating.user_id == chat.user_id)).all() == ["up"]

    caption.get_by_role("button", name="✏️").click()
    expect(page.locator("#messages .row.theirs .text").last).to_contain_text("better description")
    page.fill("#text", "a dog runs on the beach")
    page.press("#text", "Enter")
    expect(page.locator("#messages .row.theirs .text").last).to_contain_text("I saved your description")
    with stack.session() as session:
        corrections = session.scalars(select(Correction.text).where(Correction.user_id == chat.user_id)).all()
    assert corrections == ["a dog runs on the beach"]

    caption.get_by_role("button", name="🔍").click()
    attention_map = page.locator("#messages .row.theirs img.photo").last
    expect(attention_map).to_have_attribute("alt", re.compile("^Where I looked for each word"), timeout=60_000)
    page.wait_for_function("image => image.complete && image.naturalWidth > 0", arg=attention_map.element_handle())
    chat.settle()
    assert chat.newest_is_in_view()
    assert chat.errors == []


def test_the_newest_message_stays_in_view_as_photos_arrive_unless_the_user_scrolled_up(stack, chat):
    page = chat.page
    for number in range(4):
        chat.send_photo(jpeg_bytes(seed=20 + number))
        expect(chat.captions()).to_have_count(number + 1, timeout=30_000)
        chat.settle()
        assert chat.newest_is_in_view(), f"photo {number + 1}: the newest message is out of view"

    page.mouse.move(VIEWPORT["width"] / 2, VIEWPORT["height"] / 2)
    page.mouse.wheel(0, -10_000)
    page.wait_for_function("document.getElementById('chat').scrollTop === 0")
    httpx.post(f"{stack.sandbox.api_base}{SANDBOX_TOKEN}/sendMessage",
               json={"chat_id": chat.user_id, "text": "a message while you read the history"}).raise_for_status()
    expect(page.locator("#messages .row").last).to_contain_text("while you read the history")
    chat.settle()
    assert page.evaluate("document.getElementById('chat').scrollTop") == 0  # not pulled down
    assert not chat.newest_is_in_view()
    assert chat.errors == []


def test_a_photo_that_cannot_be_shown_gets_a_placeholder_not_a_broken_image(stack, chat):
    page = chat.page
    chat.send_photo(b"\xff\xd8\xff not a jpeg", name="broken.jpg")
    mine = page.locator("#messages .row.mine").last
    expect(mine.locator(".photo-missing")).to_be_visible()
    expect(mine.locator("img")).to_have_count(0)
    expect(page.locator("#messages .row.theirs").first).to_be_visible(timeout=30_000)  # the bot's apology
    chat.settle()
    assert chat.newest_is_in_view()
    assert chat.errors == []


def test_the_page_switches_to_a_group_where_a_reply_asks_for_a_caption_and_an_admin_turns_on_auto(stack, chat):
    page = chat.page
    group = -1001  # the page's group
    page.select_option("#chat-kind", "group")
    expect(page.locator("#admin-toggle")).to_be_visible()
    poster = next(_user_ids)
    photo = stack.client.send_photo(poster, jpeg_bytes(seed=31), chat_id=group)

    their_photo = page.locator(f"#m{photo['message_id']}")
    expect(their_photo.locator(".sender")).to_have_text(f"Tester {poster}")
    their_photo.locator(".reply-link").click()
    expect(page.locator("#reply-who")).to_have_text(f"Tester {poster}")
    page.fill("#text", "/caption")
    page.press("#text", "Enter")
    caption = chat.captions().filter(has=page.locator(".quote", has_text="📷 Photo")).last
    expect(caption.locator(".keyboard button")).to_have_text(["👍", "👎", "✏️", "🔍"], timeout=30_000)

    page.check("#group-admin")
    page.wait_for_function(f"""async () => (await (await fetch("/sandbox/chats/{group}")).json())
        .members.some((m) => m.user.id === {chat.user_id} && m.status === "administrator")""")
    page.fill("#text", "/auto on")
    page.press("#text", "Enter")
    expect(page.locator("#messages .row.theirs .text").last).to_contain_text("describe every photo")
    page.fill("#text", "/auto off")
    page.press("#text", "Enter")
    expect(page.locator("#messages .row.theirs .text").last).to_contain_text("only when asked")

    page.select_option("#chat-kind", "private")
    expect(page.locator("#admin-toggle")).to_be_hidden()
    expect(page.locator("#messages .sender")).to_have_count(0)
    assert chat.errors == []

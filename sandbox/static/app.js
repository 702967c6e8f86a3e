// The sandbox chat page: one person's private chat with the bot, or a group where several users
// (switch "you are user") talk with it, through the control API.
// No build step and no external assets; the DOM is built with textContent, never innerHTML.
"use strict";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const GROUP = { chat_id: -1001, title: "Sandbox group", type: "group" };  // the page's one group
const state = {
  userId: Number(params.get("user") || localStorage.getItem("sandbox-user") || 1001),
  inGroup: (params.get("chat") || localStorage.getItem("sandbox-chat")) === "group",
  commands: { private: [], group: [] },
  version: null,
  messages: [],
  replyTo: null,        // message the next text answers
  dismissedPrompt: null, // a ForceReply prompt the person chose not to answer
  lastAction: null,
  pollGeneration: 0,
  pinned: true,         // the view follows new messages until the person scrolls up to read
  rows: new Map(),      // message_id -> { json, node }: an unchanged message keeps its node
};

// ---------- talking to the sandbox ----------
async function api(path, options = {}) {
  const response = await fetch(path, options);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.description || `${response.status} ${response.statusText}`);
  return body;
}

function userPath(what) { return `/sandbox/users/${state.userId}/${what}`; }
function chatId() { return state.inGroup ? GROUP.chat_id : state.userId; }
function withChat(body) { if (state.inGroup) body.chat_id = GROUP.chat_id; return body; }

function postJson(path, body) {
  return api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
}

async function sendText(text) {
  state.pinned = true;  // your own message brings you back to the newest, as in Telegram
  const body = withChat({ text });
  if (state.replyTo) body.reply_to_message_id = state.replyTo.message_id;
  await postJson(userPath("text"), body);
  setReply(null);
}

async function sendFile(file, caption) {
  state.pinned = true;
  const form = new FormData();
  const isImage = /^image\/(jpeg|png|webp)$/.test(file.type);
  form.append(isImage ? "photo" : "document", file, file.name);
  if (!isImage) {
    form.append("filename", file.name);
    form.append("mime_type", file.type || "application/octet-stream");
  }
  if (caption) form.append("caption", caption);
  if (state.inGroup) form.append("chat_id", String(GROUP.chat_id));
  if (state.replyTo) form.append("reply_to_message_id", String(state.replyTo.message_id));
  setReply(null);
  await api(userPath(isImage ? "photo" : "document"), { method: "POST", body: form });
}

async function press(message, button, element) {
  element.classList.add("busy");
  try {
    const { callback_query_id: queryId } = await postJson(
      userPath("press"), withChat({ message_id: message.message_id, callback_data: button.callback_data }));
    const answer = await waitForAnswer(queryId);
    if (answer && answer.text) {
      if (answer.show_alert) alert(answer.text); else toast(answer.text);
    } else if (!answer) {
      toast("The bot did not answer that button.", true);
    }
  } catch (error) {
    toast(error.message, true);
  } finally {
    element.classList.remove("busy");
  }
}

async function waitForAnswer(queryId) {
  const deadline = Date.now() + 10000;
  while (Date.now() < deadline) {
    const answers = await api(`/sandbox/callback_answers?callback_query_id=${encodeURIComponent(queryId)}`);
    if (answers.length) return answers[0];
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
  return null;
}

async function poll() {
  const generation = ++state.pollGeneration;
  while (generation === state.pollGeneration) {
    try {
      const query = state.version === null ? "all=1" : `all=1&after_version=${state.version}&timeout=25`;
      const view = await api(`/sandbox/chats/${chatId()}/messages?${query}`);
      if (generation !== state.pollGeneration) return;
      state.version = view.version;
      state.messages = view.messages;
      state.lastAction = view.last_action;
      render();
      $("bot-status").textContent = "sandbox · offline Bot API";
    } catch (error) {
      console.error("poll failed:", error);
      $("bot-status").textContent = "sandbox unreachable, retrying…";
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  }
}

// ---------- rendering ----------
function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

const ENTITY_TAGS = {
  bold: "strong", italic: "em", underline: "u", strikethrough: "s", code: "code", pre: "pre",
  spoiler: "span", text_link: "a", blockquote: "blockquote", expandable_blockquote: "blockquote",
};

// Text with Telegram entities; offsets are UTF-16 units, which is what JS strings index by.
function richText(text, entities, className) {
  const root = el("div", className);
  const usable = (entities || []).filter((e) => ENTITY_TAGS[e.type]);
  const cuts = new Set([0, text.length]);
  usable.forEach((e) => { cuts.add(e.offset); cuts.add(e.offset + e.length); });
  const points = [...cuts].sort((a, b) => a - b);
  for (let i = 0; i + 1 < points.length; i++) {
    const [start, end] = [points[i], points[i + 1]];
    let node = document.createTextNode(text.slice(start, end));
    usable.filter((e) => e.offset <= start && e.offset + e.length >= end)
      .sort((a, b) => a.length - b.length)
      .forEach((e) => {
        const wrapper = el(ENTITY_TAGS[e.type]);
        if (e.type === "spoiler") {
          wrapper.className = "spoiler";
          wrapper.onclick = () => wrapper.classList.add("shown");
        }
        if (e.type === "text_link" && /^https?:\/\//.test(e.url)) {
          wrapper.href = e.url; wrapper.target = "_blank"; wrapper.rel = "noopener";
        }
        wrapper.appendChild(node);
        node = wrapper;
      });
    root.appendChild(node);
  }
  return root;
}

function summary(message) {
  if (message.text) return message.text;
  if (message.photo) return "📷 Photo" + (message.caption ? `: ${message.caption}` : "");
  if (message.document) return `📄 ${message.document.file_name || "File"}`;
  return "Message";
}

function humanSize(bytes) {
  if (bytes > 1048576) return `${(bytes / 1048576).toFixed(1)} MB`;
  if (bytes > 1024) return `${Math.round(bytes / 1024)} KB`;
  return `${bytes} B`;
}

function fileUrl(fileId) { return `/sandbox/files/${encodeURIComponent(fileId)}`; }

function renderMessage(message) {
  const mine = message.from.id === state.userId;
  const row = el("div", `row ${mine ? "mine" : "theirs"}`);
  row.id = `m${message.message_id}`;
  const column = el("div");
  column.style.display = "flex";
  column.style.flexDirection = "column";
  column.style.alignItems = mine ? "flex-end" : "flex-start";
  column.style.width = "100%";
  const bubble = el("div", "bubble");
  if (state.inGroup && !mine) bubble.appendChild(el("div", "sender", message.from.first_name));

  if (message.reply_to_message) {
    const quote = el("div", "quote", summary(message.reply_to_message));
    quote.onclick = () => {
      const target = $(`m${message.reply_to_message.message_id}`);
      if (target) target.scrollIntoView({ behavior: "smooth", block: "center" });
    };
    bubble.appendChild(quote);
  }
  if (message.photo) {
    bubble.classList.add("has-photo");
    const largest = message.photo[message.photo.length - 1];
    const image = el("img", "photo");
    image.src = fileUrl(largest.file_id);
    image.alt = message.caption || "photo";
    image.onclick = () => window.open(image.src, "_blank");
    image.addEventListener("error", () => image.replaceWith(el("div", "photo-missing", "🖼 Photo unavailable")));
    bubble.appendChild(image);
  }
  if (message.document) {
    const doc = el("div", "doc");
    doc.appendChild(el("div", "doc-icon", "📄"));
    const info = el("div");
    info.appendChild(el("div", "", message.document.file_name || "file"));
    info.appendChild(el("div", "doc-size", humanSize(message.document.file_size || 0)));
    doc.appendChild(info);
    bubble.appendChild(doc);
  }
  if (message.text) bubble.appendChild(richText(message.text, message.entities, "text"));
  if (message.caption) bubble.appendChild(richText(message.caption, message.caption_entities, "caption"));

  const meta = el("div", "meta");
  const time = new Date(message.date * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  meta.textContent = (message.edit_date ? "edited · " : "") + time;
  if (!mine || state.inGroup) {  // in a group you reply to photos too: /caption
    const replyLink = el("button", "reply-link", "reply");
    replyLink.type = "button";
    replyLink.onclick = () => { setReply(message); $("text").focus(); };
    meta.appendChild(replyLink);
  }
  bubble.appendChild(meta);
  column.appendChild(bubble);

  const keyboard = message.reply_markup && message.reply_markup.inline_keyboard;
  if (keyboard && keyboard.length) {
    const grid = el("div", "keyboard");
    keyboard.forEach((buttons) => {
      const krow = el("div", "krow");
      buttons.forEach((button) => {
        if (button.url) {
          const link = el("a", "kbutton", button.text);
          link.href = button.url; link.target = "_blank"; link.rel = "noopener";
          krow.appendChild(link);
        } else {
          const node = el("button", "", button.text);
          node.type = "button";
          node.onclick = () => press(message, button, node);
          krow.appendChild(node);
        }
      });
      grid.appendChild(krow);
    });
    column.appendChild(grid);
  }
  row.appendChild(column);
  return row;
}

function pendingPrompt() {
  // The newest bot message asking for a reply (ForceReply) that nobody answered yet.
  for (let i = state.messages.length - 1; i >= 0; i--) {
    const message = state.messages[i];
    if (!message.from.is_bot) {
      return null;
    }
    const markup = (message.sandbox || {}).reply_markup;
    if (markup && markup.force_reply) return message;
  }
  return null;
}

// Rebuilding every row on each poll would reload every photo and collapse it while it loads.
function rowFor(message) {
  const json = JSON.stringify(message);
  const known = state.rows.get(message.message_id);
  if (known && known.json === json) return known.node;
  const node = renderMessage(message);
  state.rows.set(message.message_id, { json, node });
  return node;
}

function render() {
  $("messages").replaceChildren(...state.messages.map(rowFor));
  const shown = new Set(state.messages.map((message) => message.message_id));
  state.rows.forEach((_, id) => { if (!shown.has(id)) state.rows.delete(id); });
  $("empty").classList.toggle("hidden", state.messages.length > 0);

  const last = state.messages[state.messages.length - 1];
  const action = state.lastAction;
  // Telegram shows an action for 5 s, or until the bot's next message arrives.
  const sentAt = last && last.from.is_bot ? last.sandbox.sent_at : 0;
  const typing = action && Date.now() / 1000 - action.date < 5 && !(sentAt >= action.date);
  $("typing").classList.toggle("hidden", !typing);
  if (typing) setTimeout(render, 5000);

  const prompt = pendingPrompt();
  if (prompt && prompt.message_id !== state.dismissedPrompt && (!state.replyTo || state.replyTo.message_id !== prompt.message_id)) {
    setReply(prompt);
    const placeholder = prompt.sandbox.reply_markup.input_field_placeholder;
    $("text").placeholder = placeholder || "Type your answer…";
    $("text").focus();
  }
  followNewest();
}

// ---------- keeping the newest message in view ----------
// Photos load after their message is drawn and grow the list; so the view follows size changes
// (ResizeObserver), not just render(), for as long as the person has not scrolled up.
const BOTTOM_SLACK_PX = 40;

function atBottom() {
  const chat = $("chat");
  return chat.scrollHeight - chat.scrollTop - chat.clientHeight < BOTTOM_SLACK_PX;
}

function followNewest() {
  if (state.pinned) $("chat").scrollTop = $("chat").scrollHeight;
}

let lastScrollTop = 0;
$("chat").addEventListener("scroll", () => {
  // Only a move up unpins: growth below and our own scrolling never move the view up.
  const movedUp = $("chat").scrollTop < lastScrollTop;
  if (atBottom()) state.pinned = true;
  else if (movedUp) state.pinned = false;
  lastScrollTop = $("chat").scrollTop;
});
const resized = new ResizeObserver(followNewest);
resized.observe($("messages"));
resized.observe($("chat"));  // the reply bar opening shrinks the chat

function setReply(message) {
  if (!message && state.replyTo) state.dismissedPrompt = state.replyTo.message_id;
  state.replyTo = message;
  $("reply-bar").classList.toggle("hidden", !message);
  if (message) {
    $("reply-who").textContent = message.from.is_bot ? $("bot-name").textContent
      : message.from.id === state.userId ? "yourself" : message.from.first_name;
    $("reply-text").textContent = summary(message);
  } else {
    $("text").placeholder = "Write a message…";
  }
}

function toast(text, isError = false) {
  const node = el("div", `toast${isError ? " error" : ""}`, text);
  $("toasts").appendChild(node);
  setTimeout(() => node.remove(), 3500);
}

// ---------- wiring ----------
async function loadBot() {
  try {
    const info = await api("/sandbox/bot");
    const name = info.bot.first_name || info.bot.username;
    $("bot-name").textContent = name;
    $("bot-avatar").textContent = name.slice(0, 1).toUpperCase();
    document.title = `${name} · sandbox chat`;
    state.commands = { private: info.commands, group: info.group_commands || info.commands };
    showCommands();
  } catch (error) {
    toast(`Cannot reach the sandbox: ${error.message}`, true);
  }
}

function showCommands() {
  const commands = state.inGroup ? state.commands.group : state.commands.private;
  $("commands").replaceChildren(...commands.map((command) => {
    const chip = el("button", "", `/${command.command}`);
    chip.type = "button";
    chip.title = command.description;
    // "/auto" alone would only ask how it stands; the chip turns it on.
    const text = command.command === "auto" ? "/auto on" : `/${command.command}`;
    chip.onclick = () => sendText(text).catch((error) => toast(error.message, true));
    return chip;
  }));
}

// ---------- the group ----------
async function joinGroup() {
  await postJson("/sandbox/groups", GROUP);
  const { members } = await api(`/sandbox/chats/${GROUP.chat_id}`);
  const me = members.find((member) => member.user.id === state.userId);
  $("group-admin").checked = Boolean(me && ["creator", "administrator"].includes(me.status));
}

async function setGroupAdmin(isAdmin) {
  await postJson(`/sandbox/chats/${GROUP.chat_id}/members`,
    { user_id: state.userId, status: isAdmin ? "administrator" : "member" });
}

async function switchChat() {
  $("chat-kind").value = state.inGroup ? "group" : "private";
  $("admin-toggle").classList.toggle("hidden", !state.inGroup);
  localStorage.setItem("sandbox-chat", state.inGroup ? "group" : "private");
  showCommands();
  if (state.inGroup) await joinGroup().catch((error) => toast(error.message, true));
  switchUser(state.userId);
}

function switchUser(userId) {
  state.userId = userId;
  state.version = null;
  state.messages = [];
  state.rows.clear();
  state.pinned = true;
  setReply(null);
  localStorage.setItem("sandbox-user", String(userId));
  render();
  poll();
}

$("composer").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = $("text");
  const text = input.value.trim();
  if (!text) return;
  input.value = "";
  try { await sendText(text); } catch (error) { input.value = text; toast(error.message, true); }
});

$("file").addEventListener("change", async (event) => {
  const [file] = event.target.files;
  event.target.value = "";
  if (file) await sendPicked(file);
});

async function sendPicked(file) {
  const caption = $("text").value.trim();
  $("text").value = "";
  try { await sendFile(file, caption); } catch (error) { toast(error.message, true); }
}

$("reply-cancel").addEventListener("click", () => setReply(null));
$("user-id").value = state.userId;
$("user-id").addEventListener("change", (event) => {
  const userId = Number(event.target.value);
  if (!Number.isInteger(userId) || userId <= 0) return;
  state.userId = userId;
  switchChat();
});
$("chat-kind").addEventListener("change", (event) => {
  state.inGroup = event.target.value === "group";
  switchChat();
});
$("group-admin").addEventListener("change", (event) => {
  setGroupAdmin(event.target.checked).catch((error) => toast(error.message, true));
});

let dragDepth = 0;
document.addEventListener("dragenter", (event) => { event.preventDefault(); dragDepth++; $("drop").classList.remove("hidden"); });
document.addEventListener("dragleave", () => { if (--dragDepth <= 0) { dragDepth = 0; $("drop").classList.add("hidden"); } });
document.addEventListener("dragover", (event) => event.preventDefault());
document.addEventListener("drop", (event) => {
  event.preventDefault();
  dragDepth = 0;
  $("drop").classList.add("hidden");
  const [file] = event.dataTransfer.files;
  if (file) sendPicked(file);
});

loadBot();
setInterval(loadBot, 15000);  // the bot sets its commands after it starts
switchChat();

/* tradecast overlay: persona captions and the latest decision, from the API's SSE streams.
 *
 * Captions: at most 2 lines of 42 characters, paced for reading (a full caption stays up at
 * least CAPTION_MIN_MS and READ_MS_PER_CHAR per character). Streams reconnect by themselves
 * and resume from the last event id; when the page becomes visible again it resyncs from a
 * snapshot of the desk. */
"use strict";

const LINE_CHARS = 42;
const MAX_LINES = 2;
const READ_MS_PER_CHAR = 55;
const CAPTION_MIN_MS = 1500;
// Plain ASCII faces: they render in any font an OBS machine has.
const EXPRESSIONS = {
  neutral: "(o_o)", happy: "(^_^)", excited: "(*^o^*)", worried: "(o_o;)",
  thinking: "(-_-)?", sad: "(T_T)", smug: "(~_~)",
};

const params = new URLSearchParams(location.search);
const key = params.get("key") || "";
const api = params.get("api") || "";
const state = { pages: [], showing: false, draft: "", lastIds: {}, sources: {} };

function wrap(text) {
  const lines = [];
  let line = "";
  for (const word of text.split(/\s+/).filter(Boolean)) {
    for (const piece of word.match(new RegExp(`.{1,${LINE_CHARS}}`, "g"))) {
      if (!line) line = piece;
      else if (line.length + 1 + piece.length <= LINE_CHARS) line += " " + piece;
      else { lines.push(line); line = piece; }
    }
  }
  if (line) lines.push(line);
  return lines;
}

function pages(text) {
  const lines = wrap(text);
  const out = [];
  for (let i = 0; i < lines.length; i += MAX_LINES) out.push(lines.slice(i, i + MAX_LINES));
  return out;
}

function render(lines) {
  const slots = document.querySelectorAll("#caption .line");
  slots.forEach((slot, i) => { slot.textContent = lines[i] || ""; });
}

function showNext() {
  if (!state.pages.length) { state.showing = false; return; }
  state.showing = true;
  const page = state.pages.shift();
  render(page);
  const chars = page.join(" ").length;
  setTimeout(showNext, Math.max(CAPTION_MIN_MS, chars * READ_MS_PER_CHAR));
}

function onToken(text) {
  // Live typing of the sentence being spoken, while nothing is queued for reading.
  state.draft += text;
  if (!state.showing) render(pages(state.draft).slice(-1)[0] || []);
}

function onSentence(data) {
  state.draft = "";
  setEmotion(data.emotion);
  state.pages.push(...pages(data.text));
  if (!state.showing) showNext();
}

function setEmotion(emotion) {
  const avatar = document.getElementById("avatar");
  const name = EXPRESSIONS[emotion] ? emotion : "neutral";
  avatar.dataset.emotion = name;
  avatar.setAttribute("aria-label", name);
  avatar.textContent = EXPRESSIONS[name];
}

function fmt(value, digits = 2) {
  const n = Number(value);
  return Number.isFinite(n) ? n.toLocaleString("en-US", { maximumFractionDigits: digits }) : "?";
}

function onDecision(d) {
  const qty = Number(d.quantity) ? ` ${fmt(d.quantity, 6)}` : "";
  document.getElementById("ticker-decision").textContent =
    `${d.symbol} ${d.action}${qty} @ ${fmt(d.price)} · conf ${Math.round(d.confidence * 100)}%`;
}

function onPnl(p) {
  const pnl = Number(p.realized || 0) + Number(p.unrealized || 0);
  const el = document.getElementById("ticker-pnl");
  el.textContent = `equity ${fmt(p.equity)} · P&L ${pnl >= 0 ? "+" : ""}${fmt(pnl)}`;
  el.className = pnl >= 0 ? "up" : "down";
}

function payload(event) {
  const parsed = JSON.parse(event.data);
  return parsed && parsed.channel && parsed.data ? parsed.data : parsed;
}

const HANDLERS = {
  persona: { token: (d) => onToken(d.text || ""), sentence: onSentence },
  desk: { decision: onDecision, pnl: onPnl },
};

function url(path, extra = {}) {
  const q = new URLSearchParams({ key, ...extra });
  return `${api}${path}?${q}`;
}

function connect(channel) {
  const old = state.sources[channel];
  if (old) old.close();
  const extra = state.lastIds[channel] ? { last_event_id: state.lastIds[channel] } : {};
  const source = new EventSource(url(`/v1/streams/${channel}`, extra));
  state.sources[channel] = source;
  for (const [name, handle] of Object.entries(HANDLERS[channel])) {
    source.addEventListener(name, (event) => {
      if (event.lastEventId) state.lastIds[channel] = event.lastEventId;
      try { handle(payload(event)); } catch (err) { console.warn("bad event", err); }
    });
  }
  source.onopen = () => setConnection("live");
  source.onerror = () => {
    setConnection("reconnecting");
    if (source.readyState === EventSource.CLOSED) setTimeout(() => connect(channel), 2000);
  };
}

function setConnection(value) {
  document.getElementById("connection").dataset.state = value;
}

async function resync() {
  try {
    const [decisions, portfolio] = await Promise.all([
      fetch(url("/v1/decisions", { limit: 1 })).then((r) => r.json()),
      fetch(url("/v1/portfolio")).then((r) => r.json()),
    ]);
    const items = decisions.items || decisions;
    if (items && items.length) onDecision(items[0].decision || items[0]);
    if (portfolio && portfolio.equity !== undefined) onPnl(portfolio);
  } catch (err) {
    console.warn("resync failed", err);
  }
}

async function loadCard() {
  try {
    const status = await fetch(url("/v1/desk/status")).then((r) => r.json());
    if (status.persona) document.getElementById("persona-name").textContent = status.persona;
  } catch (err) { /* the name stays generic */ }
}

document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") {
    resync();
    ["persona", "desk"].forEach(connect);
  }
});

loadCard();
resync();
["persona", "desk"].forEach(connect);
window.tradecastOverlay = { wrap, pages, state };

/* tradecast overlay: the persona (avatar, voice, captions) and the latest decision, from the
 * API's SSE streams.
 *
 * Lines: everything the persona says goes through one queue, so lines never overlap. A
 * `speech` event plays its WAV (Web Audio) with the caption revealed word by word as the audio
 * reaches each word and the mouth following the audio's loudness; a line without speech (a
 * `speech_skipped` event, or the voice off) is captioned paced for reading. With the voice on,
 * a `sentence` holds its place in the queue until its `speech` / `speech_skipped` event
 * arrives (matched by decision_id and text); once it is its turn it waits SPEECH_WAIT_MS more,
 * then is captioned paced. A `"priority": "risk"` line cuts the small talk short and goes
 * ahead of every waiting line.
 *
 * Only live events are played: a speech event replayed after a reconnect or resync, or older
 * than STALE_MS by its timestamp (against the server's clock, estimated from the Date header
 * and the events themselves), is captioned at most; ids already played are never played again.
 *
 * Captions: at most 2 lines of 42 characters; paced pages stay up at least CAPTION_MIN_MS and
 * READ_MS_PER_CHAR per character. Streams reconnect by themselves and resume from the last
 * event id; when the page becomes visible again it resyncs from a snapshot of the desk.
 *
 * Viewers' questions: a live `viewer_question` takes its place in the line queue and, when its
 * turn comes, shows a card (the viewer's name and question, as text) above the captions. The
 * card stays while the answer's lines (the sentences with its viewer_message_id) wait or run,
 * and fades ANSWER_HOLD_MS after the last one once `viewer_answer` says the answer is complete.
 * A replayed or old question is never shown, nor is one id twice.
 *
 * Query parameters: key (viewer key), api (API base URL, default this origin), mute=1 (no
 * sound; captions and the mouth follow the word timings), volume=0..1 (default 1). */
"use strict";

const LINE_CHARS = 42;
const MAX_LINES = 2;
const READ_MS_PER_CHAR = 55;
const CAPTION_MIN_MS = 1500;
const SPEECH_WAIT_MS = 4000; // a sentence's turn came: how long it waits for its speech
const STALE_MS = 10_000; // older events are never played
const REPLAY_SLACK_MS = 1500; // clock error allowed when telling replayed events from live ones
const TICK_MS = 30; // captions and mouth refresh while a line plays
const KEEP = 300; // ids and line keys remembered
const NAME_CHARS = 25; // a viewer's name on the question card, at most
const QUESTION_CHARS = 100; // their question on the card, at most (2 lines)
const ANSWER_HOLD_MS = 2500; // the card stays this long after its answer was heard
const QUESTION_MAX_MS = 60_000; // a card whose answer never completes goes after this
const { AudioOut, MouthMeter, wordMouth, wordAt, rounded, timedTokens } = window.TradecastSpeech;

const params = new URLSearchParams(location.search);
const key = params.get("key") || "";
const api = params.get("api") || "";
const volumeParam = Number.parseFloat(params.get("volume") ?? "1");
const volume = Number.isFinite(volumeParam) ? Math.min(1, Math.max(0, volumeParam)) : 1;
const muted = ["1", "true", "yes"].includes((params.get("mute") || "").toLowerCase()) || volume === 0;

/** What the page shows and plays, kept up to date for tests (also as data- attributes). */
const state = {
  audio: "idle", // "playing" while a spoken line runs (also when muted: its timeline runs)
  playing_id: null,
  played: [],
  duration_s: 0,
  mouth: "closed",
  mouth_changes: 0,
  expression: "neutral",
  caption: "",
  caption_lines: [],
  audio_context: "none",
  muted,
  volume,
  voice: false,
  queued: 0,
  persona: null,
  lines: [], // the last lines run: {id, kind, text, emotion, mode, duration_s, ended, ...}
  question: null, // the last question card: {id, name, text, shown}
};
const internal = {
  queue: [],
  current: null,
  draft: "",
  lastIds: {},
  sources: {},
  connections: {},
  handled: new Map(), // line key -> what took care of it
  playedIds: new Set(),
  questions: new Map(), // viewer_message_id -> {id, name, text, keys (its lines), answered}
  shownQuestion: null,
  waitTimer: null,
  offsetMs: null, // server clock minus this page's clock
};

const avatarRoot = document.getElementById("avatar");
const avatar = window.TradecastAvatar.create(avatarRoot, (what, value) => {
  if (what === "expression") state.expression = value;
  if (what === "mouth") {
    state.mouth = value;
    if (state.audio === "playing") state.mouth_changes += 1;
  }
  sync();
});
const out = new AudioOut(volume);
out.onState = (value) => { state.audio_context = value; sync(); };
const meter = new MouthMeter();

function sync() {
  const d = avatarRoot.dataset;
  d.audio = state.audio;
  d.playingId = state.playing_id || "";
  d.durationS = String(state.duration_s);
  d.mouthChanges = String(state.mouth_changes);
  d.caption = state.caption;
  d.audioContext = state.audio_context;
  d.played = state.played.join(" ");
  d.muted = muted ? "1" : "0";
}

function remember(map, k, value) {
  map.set(k, value);
  if (map.size > KEEP) map.delete(map.keys().next().value);
}

// ---- captions ---------------------------------------------------------------------------

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
  state.caption_lines = lines.slice(0, MAX_LINES);
}

function setCaption(text, lines) {
  render(lines);
  state.caption = text;
  sync();
}

/** The tokens laid out as wrap() would: lines of {i (token index), text}. */
function layout(tokens) {
  const lines = [];
  let line = [];
  let length = 0;
  tokens.forEach((token, i) => {
    for (const piece of token.text.match(new RegExp(`.{1,${LINE_CHARS}}`, "g"))) {
      if (line.length && length + 1 + piece.length <= LINE_CHARS) {
        line.push({ i, text: piece });
        length += 1 + piece.length;
      } else {
        if (line.length) lines.push(line);
        line = [{ i, text: piece }];
        length = piece.length;
      }
    }
  });
  if (line.length) lines.push(line);
  return lines;
}

/** Show the words heard by `t` seconds (the page holding the last one); false if unchanged. */
function showWords(spoken, t) {
  let k = -1;
  while (k + 1 < spoken.tokens.length && spoken.tokens[k + 1].start <= t) k += 1;
  if (k === spoken.shown) return false;
  spoken.shown = k;
  if (k < 0) { setCaption("", []); return true; }
  let lineIndex = 0;
  spoken.lines.forEach((line, n) => { if (line.some((p) => p.i === k)) lineIndex = n; });
  const first = lineIndex - (lineIndex % MAX_LINES);
  const visible = spoken.lines
    .slice(first, first + MAX_LINES)
    .map((line) => line.filter((p) => p.i <= k).map((p) => p.text).join(" "));
  const text = spoken.tokens.slice(0, k + 1).map((w) => w.text).join(" ");
  setCaption(text, visible);
  return true;
}

// ---- the clock: which events are live ---------------------------------------------------

function noteServerDate(response, sentAt) {
  const date = Date.parse(response.headers.get("date") || "");
  if (Number.isNaN(date) || internal.offsetMs !== null) return;
  internal.offsetMs = date + 500 - (sentAt + Date.now()) / 2; // Date has whole seconds
}

function serverNow() {
  return Date.now() + (internal.offsetMs ?? 0);
}

/** How old an event is (ms); an event "from the future" corrects the clock estimate. */
function ageMs(timestamp) {
  const at = Date.parse(timestamp || "");
  if (Number.isNaN(at)) return 0;
  if (internal.offsetMs === null || at > serverNow()) internal.offsetMs = at - Date.now();
  return serverNow() - at;
}

/** How an event came: {stale: older than STALE_MS, live: neither stale nor replayed after a
 * reconnect}. Tests may pass {live: false} or {stale: true} in `meta` instead of a timestamp. */
function arrival(meta) {
  if (!meta) return { live: true, stale: false };
  const stale = meta.stale !== undefined ? Boolean(meta.stale) : ageMs(meta.timestamp) > STALE_MS;
  if (stale) return { live: false, stale };
  if (meta.live !== undefined) return { live: Boolean(meta.live), stale };
  const conn = internal.connections[meta.channel];
  if (conn && conn.resumed && meta.timestamp) {
    // what a resumed stream sends first happened before it (re)connected: a replay
    const connectedServer = conn.openedAt + (internal.offsetMs ?? 0);
    if (Date.parse(meta.timestamp) < connectedServer - REPLAY_SLACK_MS) return { live: false, stale };
  }
  return { live: true, stale };
}

// ---- the line queue ---------------------------------------------------------------------

function lineKey(data) {
  return `${data.decision_id || ""}\u241e${String(data.text || "").trim()}`;
}

function sameLine(a, b) {
  if (String(a.text || "").trim() !== String(b.text || "").trim()) return false;
  return !a.decision_id || !b.decision_id || a.decision_id === b.decision_id;
}

function findPending(data) {
  return internal.queue.findIndex((item) => item.kind === "pending" && sameLine(item, data));
}

function paced(data) {
  return {
    kind: "paced", key: lineKey(data), text: data.text, emotion: data.emotion,
    decision_id: data.decision_id || null, priority: "normal",
  };
}

function enqueue(item) {
  if (item.priority === "risk") {
    // ahead of the small talk, behind the risk lines already waiting
    let at = 0;
    while (at < internal.queue.length && internal.queue[at].priority === "risk") at += 1;
    internal.queue.splice(at, 0, item);
  } else {
    internal.queue.push(item);
  }
}

function pump() {
  state.queued = internal.queue.length;
  // a sentence's wait starts when it is its turn (a risk line may have gone ahead of it)
  internal.queue.slice(1).forEach((item) => { delete item.turnAt; });
  if (internal.current) return;
  const item = internal.queue[0];
  if (!item) return;
  if (item.kind === "pending") {
    const now = Date.now();
    if (item.turnAt === undefined) item.turnAt = now;
    const deadline = item.turnAt + SPEECH_WAIT_MS;
    if (now < deadline) {
      clearTimeout(internal.waitTimer);
      internal.waitTimer = setTimeout(pump, deadline - now + 5);
      return;
    }
    item.kind = "paced"; // no speech came for it: caption it as today
  }
  internal.queue.shift();
  state.queued = internal.queue.length;
  if (item.kind === "question") { showQuestion(item.question); pump(); return; }
  internal.current = item;
  if (item.kind === "speech") runSpeech(item);
  else runPaced(item);
}

function record(item, extra) {
  const entry = {
    id: item.id || null, kind: item.kind, text: item.text, emotion: item.emotion,
    decision_id: item.decision_id || null, priority: item.priority,
    started_ms: performance.now(), ended_ms: null, ended: false, interrupted: false, ...extra,
  };
  state.lines.push(entry);
  if (state.lines.length > 50) state.lines.shift();
  return entry;
}

function done(item) {
  if (internal.current === item) internal.current = null;
  settleQuestion();
  setTimeout(pump, 0);
}

function interruptCurrent() {
  const current = internal.current;
  if (current && current.priority !== "risk" && current.cancel) current.cancel();
}

function runPaced(item) {
  const entry = record(item, { mode: "paced" });
  avatar.setExpression(item.emotion);
  const queue = pages(item.text || "");
  const shown = [];
  let timer = null;
  const finish = (interrupted) => {
    clearTimeout(timer);
    entry.ended = true;
    entry.ended_ms = performance.now();
    entry.interrupted = interrupted;
    done(item);
  };
  const next = () => {
    const page = queue.shift();
    if (!page) { finish(false); return; }
    shown.push(page.join(" "));
    setCaption(shown.join(" "), page);
    timer = setTimeout(next, Math.max(CAPTION_MIN_MS, page.join(" ").length * READ_MS_PER_CHAR));
  };
  item.cancel = () => finish(true);
  next();
}

async function runSpeech(item) {
  let cancelled = false;
  item.cancel = () => { cancelled = true; done(item); };
  let buffer = null;
  if (!muted) {
    buffer = await item.audio;
    if (cancelled) return;
    if (!buffer) { // the audio cannot be had: a caption, as if skipped
      item.kind = "paced";
      runPaced(item);
      return;
    }
  }
  const running = !muted && (await out.ensureRunning());
  if (cancelled) return;
  const tokens = timedTokens(item.text, item.words, buffer ? buffer.duration : item.duration_s);
  const spoken = { tokens, lines: layout(tokens), shown: -2 };
  let player = null;
  let clock;
  if (running) {
    player = out.play(buffer);
    clock = player.time;
  } else { // muted, or the browser keeps audio suspended: the same timeline, in silence
    const t0 = performance.now();
    clock = () => (performance.now() - t0) / 1000;
  }
  const duration = buffer ? buffer.duration
    : Number(item.duration_s) || (tokens.length ? tokens[tokens.length - 1].end : 0);
  const entry = record(item, {
    mode: running ? "webaudio" : "silent", duration_s: duration, mouth_changes: 0,
  });
  const changesBefore = state.mouth_changes;
  internal.playedIds.add(item.id);
  state.played.push(item.id);
  if (state.played.length > KEEP) state.played.shift();
  state.audio = "playing";
  state.playing_id = item.id;
  state.duration_s = duration;
  avatar.setExpression(item.emotion);
  avatar.setTalking(true);
  meter.reset();
  sync();
  let timer = null;
  let finished = false;
  const finish = (interrupted) => {
    if (finished) return;
    finished = true;
    clearInterval(timer);
    if (player) player.stop();
    if (!interrupted) {
      spoken.shown = -2;
      showWords(spoken, Infinity); // the whole line stays up
    }
    avatar.setMouth("closed");
    entry.mouth_changes = state.mouth_changes - changesBefore;
    avatar.setTalking(false);
    state.audio = "idle";
    state.playing_id = null;
    entry.ended = true;
    entry.ended_ms = performance.now();
    entry.interrupted = interrupted;
    sync();
    done(item);
  };
  item.cancel = () => finish(true);
  const step = () => {
    const t = clock();
    showWords(spoken, t);
    if (player) {
      const word = wordAt(t, tokens);
      avatar.setMouth(meter.update(out.rms(), performance.now(), Boolean(word && rounded(word.text))));
      if (t > duration + 1) finish(false); // in case "ended" never comes
    } else {
      avatar.setMouth(wordMouth(t, tokens));
      if (t >= duration) finish(false);
    }
  };
  timer = setInterval(step, TICK_MS);
  step();
  if (player) player.ended.then(() => finish(false));
}

// ---- persona events ---------------------------------------------------------------------

function speechUrl(path) {
  const target = new URL(`${api}${path}`, location.href);
  if (key) target.searchParams.set("key", key);
  return target.toString();
}

function onToken(text) {
  // live typing of the sentence being written, when no voice will say it and nothing shows
  internal.draft += text;
  if (!state.voice && !internal.current && !internal.queue.length) {
    const draft = pages(internal.draft).slice(-1)[0] || [];
    setCaption(draft.join(" "), draft);
  }
}

function onSentence(data, how) {
  internal.draft = "";
  const question = internal.questions.get(data.viewer_message_id);
  if (question && data.text) question.keys.add(lineKey(data));
  if (!data.text || how.stale) return; // an old line is not worth a caption any more
  const k = lineKey(data);
  if (internal.handled.has(k)) return; // its speech (or skip) came first
  remember(internal.handled, k, "sentence");
  if (state.voice) {
    enqueue({
      kind: "pending", key: k, text: data.text, emotion: data.emotion,
      decision_id: data.decision_id || null, priority: "normal",
    });
  } else {
    enqueue(paced(data));
  }
  pump();
}

function onSpeech(data, how) {
  if (!data.text) return;
  const id = data.id || lineKey(data);
  state.voice = true;
  if (internal.playedIds.has(id) || internal.queue.some((q) => q.id === id)) return;
  if (internal.current && internal.current.id === id) return;
  const at = findPending(data);
  const k = lineKey(data);
  if (!how.live) { // replayed or too old: a caption at most, never played
    if (at >= 0) internal.queue[at] = paced(data);
    else if (!internal.handled.has(k) && !how.stale) enqueue(paced(data));
    remember(internal.handled, k, "caption");
    pump();
    return;
  }
  const item = {
    kind: "speech", id, key: k, text: data.text, emotion: data.emotion,
    decision_id: data.decision_id || null,
    priority: data.priority === "risk" ? "risk" : "normal",
    words: data.words || [], duration_s: Number(data.duration_s) || 0,
  };
  item.audio = muted ? Promise.resolve(null)
    : out.load(speechUrl(data.url)).catch((err) => { console.warn("speech", err); return null; });
  remember(internal.handled, k, "speech");
  if (item.priority === "risk") {
    if (at >= 0) internal.queue.splice(at, 1);
    enqueue(item);
    interruptCurrent();
  } else if (at >= 0) {
    internal.queue[at] = item;
  } else {
    enqueue(item);
  }
  pump();
}

function onSkipped(data, how) {
  if (!data.text) return;
  const at = findPending(data);
  const k = lineKey(data);
  if (at >= 0) internal.queue[at] = paced(data);
  else if (!internal.handled.has(k) && !how.stale) enqueue(paced(data));
  remember(internal.handled, k, "skipped");
  pump();
}

function onEmotion(data) {
  // the line being spoken sets the face; between lines an emotion event does
  if (!internal.current && !internal.queue.length) avatar.setExpression(data.emotion);
}

// ---- viewers' questions ----------------------------------------------------------------

/** `text` on one line, cut at a word (if one ends late enough) to at most `max` characters. */
function clip(text, max) {
  const flat = String(text || "").replace(/\s+/g, " ").trim();
  if (flat.length <= max) return flat;
  const cut = flat.slice(0, max - 1);
  const space = cut.lastIndexOf(" ");
  return `${space > max * 0.6 ? cut.slice(0, space) : cut}…`;
}

function onViewerQuestion(data, how) {
  const id = data.viewer_message_id;
  if (!id || !how.live || internal.questions.has(id)) return; // never an old one, never twice
  const question = {
    id, name: clip(data.display_name, NAME_CHARS), text: clip(data.text, QUESTION_CHARS),
    keys: new Set(), answered: false,
  };
  remember(internal.questions, id, question);
  enqueue({ kind: "question", key: `question\u241e${id}`, question, priority: "normal" });
  pump();
}

function onViewerAnswer(data) {
  const question = internal.questions.get(data.viewer_message_id);
  if (!question) return;
  question.answered = true;
  settleQuestion();
}

function showQuestion(question) {
  const old = internal.shownQuestion;
  if (old) { clearTimeout(old.timer); clearTimeout(old.guard); }
  internal.shownQuestion = question;
  const card = document.getElementById("question");
  document.getElementById("question-name").textContent = question.name;
  document.getElementById("question-text").textContent = question.text;
  card.dataset.id = question.id;
  card.dataset.state = "shown";
  state.question = { id: question.id, name: question.name, text: question.text, shown: true };
  question.guard = setTimeout(() => hideQuestion(question), QUESTION_MAX_MS);
  settleQuestion();
}

function hideQuestion(question) {
  if (internal.shownQuestion !== question) return;
  clearTimeout(question.timer);
  clearTimeout(question.guard);
  internal.shownQuestion = null;
  document.getElementById("question").dataset.state = "hidden";
  state.question.shown = false;
}

/** The card goes once its answer is complete and none of its lines waits or runs. */
function settleQuestion() {
  const question = internal.shownQuestion;
  if (!question || !question.answered || question.timer) return;
  const lines = [internal.current, ...internal.queue];
  if (lines.some((item) => item && question.keys.has(item.key))) return;
  question.timer = setTimeout(() => hideQuestion(question), ANSWER_HOLD_MS);
}

// ---- the desk ---------------------------------------------------------------------------

function fmt(value, digits = 2) {
  const n = Number(value);
  return Number.isFinite(n) ? n.toLocaleString("en-US", { maximumFractionDigits: digits }) : "?";
}

// the latest decision per symbol: a portfolio desk decides several at each tick
const latestDecisions = new Map();

function onDecision(d) {
  latestDecisions.set(d.symbol, d);
  const el = document.getElementById("ticker-decision");
  if (latestDecisions.size > 1) {
    el.textContent = [...latestDecisions.values()]
      .map((x) => `${x.symbol.split("/")[0]} ${x.action}`)
      .join(" · ");
    return;
  }
  const qty = Number(d.quantity) ? ` ${fmt(d.quantity, 6)}` : "";
  el.textContent =
    `${d.symbol} ${d.action}${qty} @ ${fmt(d.price)} · conf ${Math.round(d.confidence * 100)}%`;
}

function pct(share) {
  const n = Number(share) * 100;
  return Number.isFinite(n) ? `${n >= 0 ? "" : "−"}${Math.abs(n).toFixed(1)}%` : "?";
}

/** The book across symbols: each position's share of equity (shorts negative), gross
 * exposure and VaR. `exposure` is /v1/portfolio's, or a `portfolio` desk event's `after`. */
function onBook(exposure) {
  const el = document.getElementById("ticker-book");
  if (!exposure || !exposure.values || !Number(exposure.equity || 1)) return;
  const equity = Number(exposure.equity || 0);
  const held = Object.entries(exposure.values).filter(([, v]) => Number(v) !== 0);
  const parts = held.map(([symbol, v]) =>
    `${symbol.split("/")[0]} ${equity ? pct(Number(v) / equity) : fmt(v)}`);
  if (held.length || latestDecisions.size > 1) parts.push(`gross ${pct(exposure.gross)}`);
  if (exposure.var !== null && exposure.var !== undefined && held.length) {
    parts.push(`VaR ${pct(exposure.var)}`);
  }
  el.textContent = parts.join(" · ");
}

function onPnl(p) {
  const pnl = Number(p.realized || 0) + Number(p.unrealized || 0);
  const el = document.getElementById("ticker-pnl");
  el.textContent = `equity ${fmt(p.equity)} · P&L ${pnl >= 0 ? "+" : ""}${fmt(pnl)}`;
  el.className = pnl >= 0 ? "up" : "down";
}

// ---- events in ----------------------------------------------------------------------------

const HANDLERS = {
  token: (d) => onToken(d.text || ""),
  sentence: onSentence,
  emotion: onEmotion,
  speech: onSpeech,
  speech_skipped: onSkipped,
  blocked: () => {},
  viewer_question: onViewerQuestion,
  viewer_answer: onViewerAnswer,
  decision: onDecision,
  pnl: onPnl,
  portfolio: (d) => onBook(d.book || d.after), // the book after the orders, not the plan
  resync: () => resync(),
};
const CHANNEL_EVENTS = {
  persona: [
    "token", "sentence", "emotion", "speech", "speech_skipped", "blocked",
    "viewer_question", "viewer_answer", "resync",
  ],
  desk: ["decision", "pnl", "portfolio", "resync"],
};

/** One event, from the stream or a test: `meta` is {channel, id, timestamp} (or {live}). */
function handle(name, data, meta) {
  const handler = HANDLERS[name];
  if (handler) handler(data || {}, arrival(meta));
}

function url(path, extra = {}) {
  const q = new URLSearchParams({ key, ...extra });
  return `${api}${path}?${q}`;
}

function connect(channel) {
  const old = internal.sources[channel];
  if (old) old.close();
  const extra = internal.lastIds[channel] ? { last_event_id: internal.lastIds[channel] } : {};
  const source = new EventSource(url(`/v1/streams/${channel}`, extra));
  internal.sources[channel] = source;
  let opens = 0;
  for (const name of CHANNEL_EVENTS[channel]) {
    source.addEventListener(name, (event) => {
      if (event.lastEventId) internal.lastIds[channel] = event.lastEventId;
      try {
        const parsed = JSON.parse(event.data);
        const framed = parsed && parsed.channel && parsed.data;
        const meta = { channel, id: event.lastEventId, timestamp: framed ? parsed.timestamp : null };
        handle(name, framed ? parsed.data : parsed, meta);
      } catch (err) { console.warn("bad event", err); }
    });
  }
  source.onopen = () => {
    opens += 1;
    // a stream opened with a last id (or reopened by the browser) replays what it missed
    internal.connections[channel] = { openedAt: Date.now(), resumed: opens > 1 || "last_event_id" in extra };
    setConnection("live");
  };
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
    if (portfolio && portfolio.exposure) {
      onBook({ ...portfolio.exposure, equity: portfolio.equity });
    }
  } catch (err) {
    console.warn("resync failed", err);
  }
}

function setName(name) {
  state.persona = name;
  document.getElementById("persona-name").textContent = name;
  avatar.setName(name);
}

async function loadPersona() {
  const sentAt = Date.now();
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), 5000);
  try {
    const response = await fetch(url("/v1/persona"), { signal: abort.signal });
    noteServerDate(response, sentAt);
    if (!response.ok) throw new Error(`persona ${response.status}`);
    const info = await response.json();
    if (info.name) setName(info.name);
    state.voice = Boolean(info.voice && info.voice.enabled);
    const sprites = info.avatar && info.avatar.sprites;
    if (Array.isArray(sprites) && sprites.includes("idle.png")) {
      avatar.useSprites(sprites, (file) => url(`/v1/persona/sprites/${encodeURIComponent(file)}`));
    }
  } catch (err) {
    try { // an older server: only the name
      const status = await fetch(url("/v1/desk/status")).then((r) => r.json());
      if (status.persona) setName(status.persona);
    } catch (err2) { /* the name stays generic */ }
  } finally {
    clearTimeout(timer);
  }
}

document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") {
    resync();
    ["persona", "desk"].forEach(connect);
  }
});
// where autoplay needs a gesture (a normal browser tab), the first click or key starts audio
for (const name of ["pointerdown", "keydown"]) {
  document.addEventListener(name, () => { if (out.ctx) out.ctx.resume(); });
}

window.tradecastOverlay = { state, handle, connect, wrap, pages, avatar, internal };
if (!muted) out.open();
sync();
resync();
loadPersona().then(() => ["persona", "desk"].forEach(connect));

/* tradecast operator console: sign-in, tabs, the live streams, and which view refetches what
 * when the desk says something changed.
 *
 * No polling: the page fetches on load, when a stream event, a `resync` or a reconnection says
 * something changed (several events in a burst make one refetch), and when a view that missed
 * changes while hidden is shown again. `window.tradecastConsole.state` mirrors what the page
 * shows, for tests and for debugging. */

import { api, ApiError, currentSession, setCsrfToken, setUnauthorizedHandler, signIn, signOut } from "./api.js";
import { BookView } from "./book.js";
import { ChatPanel } from "./chat.js";
import { ControlView } from "./control.js";
import { byId, debounce, el, fmtNum, fmtSigned, fmtTime, plural } from "./dom.js";
import { explanationCard } from "./explain.js";
import { legend, MarketChart } from "./market.js";
import { Streams } from "./streams.js";

const ROLE_RANK = { viewer: 0, operator: 1, admin: 2 };
const SELECT_ROWS = 200; // decisions offered in the selector (newest first)
const ALL_CANDLES = 20000; // the first load: the whole series the API gives
const ALL_MARKERS = 5000;
const RECENT_MARKERS = 50; // markers refetched after an event (merged by id)
const RECENT_CANDLES = 50;

const state = {
  signedIn: false,
  role: null,
  name: null,
  expiresAt: null,
  connection: "offline",
  view: "market",
  symbol: null,
  timeframe: null,
  candles: 0,
  markers: 0,
  decisions: 0,
  lastDecisionId: null,
  selectedDecision: null,
  explained: null, // the decision id the explanation card shows
  explainedComplete: false,
  firstChartPaintMs: null,
  approvals: [],
  fills: 0, // rows in the book's fills table
  fillMarkers: 0,
  deskState: null, // the desk's status as last fetched: state, ticking, ticks
  ticking: false,
  ticks: 0,
  lastApproval: null,
  chatReplies: 0,
  events: 0,
  refetches: 0,
  reconnects: 0,
  errors: [],
};

const app = {
  streams: null,
  market: null,
  book: null,
  control: null,
  chat: null,
  report: null, // the report the explanation card shows
  live: new Map(), // decision id -> persona lines heard live
  dirty: new Set(), // views to reload when next shown
  pending: new Set(), // what the next refetch covers
};

function hasRole(min) {
  return state.role !== null && ROLE_RANK[state.role] >= ROLE_RANK[min];
}

function note(error) {
  if (error instanceof ApiError && error.status === 401) return; // handled: back to sign-in
  console.warn(error);
  state.errors.push(String(error && error.message ? error.message : error));
  if (state.errors.length > 20) state.errors.shift();
}

// ---- sign-in -------------------------------------------------------------------------------

async function boot() {
  setUnauthorizedHandler(() => signedOut("Your session has ended: sign in again."));
  bindTabs();
  byId("signin-form").addEventListener("submit", onSignIn);
  byId("sign-out").addEventListener("click", onSignOut);
  byId("decision-select").addEventListener("change", (event) => {
    byId("follow-latest").checked = false;
    selectDecision(event.target.value);
  });
  byId("follow-latest").addEventListener("change", (event) => {
    if (event.target.checked && state.lastDecisionId) selectDecision(state.lastDecisionId, { follow: true });
  });
  let session = null;
  try {
    session = await currentSession();
  } catch (error) {
    note(error);
  }
  if (session) await start(session);
  else showSignIn("");
}

async function onSignIn(event) {
  event.preventDefault();
  const input = byId("api-key");
  const error = byId("signin-error");
  error.textContent = "";
  try {
    const session = await signIn(input.value.trim());
    input.value = "";
    await start(session);
  } catch (err) {
    error.textContent = err instanceof ApiError && err.status === 401
      ? "That key is not valid." : `Sign-in failed: ${err.message}`;
    input.focus();
  }
}

async function onSignOut() {
  try {
    await signOut();
  } catch (error) {
    note(error);
  }
  // a fresh page: nothing of the session stays in memory
  location.replace(location.pathname);
}

function showSignIn(message) {
  document.body.dataset.signedIn = "false";
  byId("signin").hidden = false;
  byId("app").hidden = true;
  byId("who").hidden = true;
  byId("signin-error").textContent = message;
  byId("api-key").focus();
}

function signedOut(message) {
  if (!state.signedIn) return;
  state.signedIn = false;
  state.role = null;
  setCsrfToken("");
  if (app.streams) app.streams.close();
  setConnection("offline");
  showSignIn(message);
}

async function start(session) {
  state.signedIn = true;
  state.role = session.role;
  state.name = session.name;
  state.expiresAt = session.expires_at;
  setCsrfToken(session.csrf_token);
  document.body.dataset.signedIn = "true";
  document.body.dataset.role = session.role;
  byId("signin").hidden = true;
  byId("app").hidden = false;
  byId("who").hidden = false;
  byId("who-name").textContent = session.name;
  byId("who-role").textContent = session.role;
  // what the role may not use is hidden (and out of the accessibility tree); tab panels are
  // shown by showView, which also hides the panel of a hidden tab
  for (const node of document.querySelectorAll("[data-min-role]")) {
    if (node.getAttribute("role") !== "tabpanel") node.hidden = !hasRole(node.dataset.minRole);
  }
  showView(hasRole("operator") || state.view !== "control" ? state.view : "market");

  if (!app.market) {
    app.market = new MarketChart(byId("market-chart"), {
      onSelect: (id) => { byId("follow-latest").checked = false; selectDecision(id); showView("tick"); },
      onFirstPaint: (ms) => { if (state.firstChartPaintMs === null) state.firstChartPaintMs = Math.round(ms); },
    });
    byId("market-legend").replaceChildren(...legend());
    app.book = new BookView(state);
  }
  if (hasRole("operator") && !app.control) {
    app.control = new ControlView({
      state, isAdmin: () => hasRole("admin"), onChanged: (what) => afterControl(what),
    });
    app.chat = new ChatPanel(state);
  }
  // streams first: what happens while the views load is heard (and refetched), not lost
  openStreams();
  await loadAll();
}

// ---- the first load and the refetches -----------------------------------------------------

/** Everything the visible views need, in parallel (candles and markers first of all). */
async function loadAll() {
  const candles = api(`/v1/market/candles?${symbolQuery()}limit=${ALL_CANDLES}`);
  const markers = api(`/v1/decisions/markers?${symbolQuery()}limit=${ALL_MARKERS}`);
  const snapshot = api("/v1/snapshot");
  const positions = api("/v1/positions");
  try {
    const [c, m] = await Promise.all([candles, markers]);
    state.symbol = c.symbol;
    state.timeframe = c.timeframe;
    app.market.setMarkers(m);
    app.market.setCandles(c.items);
    syncMarket();
  } catch (error) {
    note(error);
  }
  try {
    const [snap, pos] = await Promise.all([snapshot, positions]);
    showStatus(snap.status, snap.portfolio);
    showPosition(pos.items);
    if (snap.decision && (!state.explained || byId("follow-latest").checked)) {
      state.lastDecisionId = snap.decision.id;
      showReport(snap.decision);
    }
  } catch (error) {
    note(error);
  }
  fillSelector();
  markDirty("book", "control");
  await loadView(state.view);
}

/** `symbol=...&` once the desk's symbol is known (the API's default is the desk's). */
function symbolQuery() {
  return state.symbol ? `symbol=${encodeURIComponent(state.symbol)}&` : "";
}

function markDirty(...views) {
  for (const view of views) app.dirty.add(view);
}

/** Load a view's data if it is visible and changed since it was last loaded. */
async function loadView(view) {
  if (view !== state.view || !app.dirty.has(view)) return;
  app.dirty.delete(view);
  try {
    if (view === "book") await app.book.load();
    if (view === "control" && app.control) await app.control.load();
  } catch (error) {
    app.dirty.add(view);
    note(error);
  }
}

/** Ask for a refetch of `what` (candles, markers, status, report, approvals, book, journal);
 * the requests of a burst of events are served together. */
function refetch(...what) {
  for (const item of what) app.pending.add(item);
  runRefetch();
}

const runRefetch = debounce(async () => {
  const what = new Set(app.pending);
  app.pending.clear();
  state.refetches += 1;
  const jobs = [];
  if (what.has("candles")) jobs.push(refreshCandles());
  if (what.has("markers")) jobs.push(refreshMarkers());
  if (what.has("status")) jobs.push(refreshStatus());
  if (what.has("report")) jobs.push(refreshReport());
  if (what.has("book")) { markDirty("book"); jobs.push(loadView("book")); }
  if (app.control && (what.has("approvals") || what.has("journal"))) {
    if (state.view === "control") {
      if (what.has("approvals")) jobs.push(app.control.loadApprovals().catch(note));
      jobs.push(app.control.loadJournal().catch(note));
    } else {
      markDirty("control");
    }
  }
  await Promise.all(jobs);
}, 150);

async function refreshCandles() {
  try {
    // an empty chart (the first load failed) takes the whole series, as does a gap
    const recent = app.market.times.length ? RECENT_CANDLES : ALL_CANDLES;
    const page = await api(`/v1/market/candles?${symbolQuery()}limit=${recent}`);
    state.symbol = page.symbol;
    state.timeframe = page.timeframe;
    if (!app.market.times.length) {
      app.market.setCandles(page.items);
    } else if (!app.market.mergeCandles(page.items)) {
      const all = await api(`/v1/market/candles?${symbolQuery()}limit=${ALL_CANDLES}`);
      app.market.setCandles(all.items);
    }
    syncMarket();
  } catch (error) {
    note(error);
  }
}

async function refreshMarkers() {
  try {
    const recent = app.market.decisions.size ? RECENT_MARKERS : ALL_MARKERS;
    const page = await api(`/v1/decisions/markers?${symbolQuery()}limit=${recent}`);
    app.market.mergeMarkers(page);
    syncMarket();
    fillSelector();
  } catch (error) {
    note(error);
  }
}

async function refreshStatus() {
  try {
    const [status, portfolio, positions] = await Promise.all([
      api("/v1/desk/status"), api("/v1/portfolio"), api("/v1/positions"),
    ]);
    showStatus(status, portfolio);
    showPosition(positions.items);
  } catch (error) {
    note(error);
  }
}

/** The explained decision's report, until it is complete (stored with the gate's verdict). */
async function refreshReport() {
  const id = state.explained;
  if (!id || state.explainedComplete) return;
  try {
    const report = await api(`/v1/decisions/${encodeURIComponent(id)}`);
    if (state.explained === id) showReport(report);
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 404)) note(error); // not stored yet
  }
}

function afterControl(what) {
  if (what === "approval") refetch("approvals", "journal", "markers", "book", "status", "report");
  else if (what === "limits") refetch("journal", "status");
  else refetch("journal", "status");
}

// ---- what the views show -----------------------------------------------------------------

function syncMarket() {
  state.candles = app.market.times.length;
  state.markers = app.market.markerCount;
  state.decisions = app.market.decisions.size;
  state.fillMarkers = app.market.fills.size;
  byId("market-summary").textContent = app.market.describe(state.symbol || "", state.timeframe || "");
}

function showStatus(status, portfolio) {
  state.symbol = state.symbol || status.symbol;
  state.deskState = status.state;
  state.ticking = status.ticking;
  state.ticks = status.ticks;
  const pnl = portfolio ? Number(portfolio.realized_pnl) + Number(portfolio.unrealized_pnl) : Number.NaN;
  byId("desk-line").textContent = `${status.symbol} · ${status.state}${status.ticking ? " (ticking)" : ""}`
    + ` · equity ${fmtNum(status.equity)}${Number.isFinite(pnl) ? ` · P&L ${fmtSigned(pnl)}` : ""}`
    + ` · ${plural(status.ticks, "tick")}${status.last_tick ? `, last at ${fmtTime(status.last_tick.at)}` : ""}`
    + `${status.kill_switch ? " · KILL SWITCH ON" : ""}`;
  if (app.control) app.control.showStatus(status);
}

function showPosition(positions) {
  const open = positions.find((p) => p.symbol === state.symbol);
  app.market.setPosition(open || null);
}

function fillSelector() {
  const select = byId("decision-select");
  const items = app.market.recent(SELECT_ROWS);
  const options = items.map((item) => el("option", {
    value: item.id, text: `${fmtTime(item.t)} · ${item.action} · ${item.outcome || "deciding"}`,
  }));
  if (!options.length) options.push(el("option", { value: "", text: "no decision yet" }));
  select.replaceChildren(...options);
  if (state.explained && app.market.has(state.explained)) select.value = state.explained;
}

function showReport(report) {
  app.report = report;
  const id = report.decision ? report.decision.id : report.id;
  state.explained = id;
  state.selectedDecision = id;
  state.explainedComplete = Boolean(report.risk);
  byId("explain").replaceChildren(explanationCard(report, { live: app.live.get(id) || [] }));
  app.market.select(id);
  const select = byId("decision-select");
  if ([...select.options].some((o) => o.value === id)) select.value = id;
}

async function selectDecision(id, { follow = false } = {}) {
  if (!id) return;
  state.selectedDecision = id;
  app.market.select(id);
  try {
    showReport(await api(`/v1/decisions/${encodeURIComponent(id)}`));
  } catch (error) {
    if (!follow) note(error);
  }
}

// ---- tabs ------------------------------------------------------------------------------------

function tabs() {
  return [...document.querySelectorAll('[role="tab"]')].filter((tab) => !tab.hidden);
}

function showView(view) {
  state.view = view;
  for (const tab of document.querySelectorAll('[role="tab"]')) {
    const selected = tab.id === `tab-${view}`;
    tab.setAttribute("aria-selected", String(selected));
    tab.tabIndex = selected ? 0 : -1;
    byId(tab.getAttribute("aria-controls")).hidden = !selected || tab.hidden;
  }
  loadView(view);
}

/** Tabs as the ARIA pattern has them: arrows, Home and End move between tabs (and show
 * them); Tab moves into the panel. */
function bindTabs() {
  const list = byId("tabs");
  list.addEventListener("click", (event) => {
    const tab = event.target.closest('[role="tab"]');
    if (tab) showView(tab.id.slice(4));
  });
  list.addEventListener("keydown", (event) => {
    const all = tabs();
    const at = all.indexOf(document.activeElement);
    if (at < 0) return;
    let next = null;
    if (event.key === "ArrowRight") next = all[(at + 1) % all.length];
    else if (event.key === "ArrowLeft") next = all[(at - 1 + all.length) % all.length];
    else if (event.key === "Home") next = all[0];
    else if (event.key === "End") next = all[all.length - 1];
    if (!next) return;
    event.preventDefault();
    next.focus();
    showView(next.id.slice(4));
  });
}

// ---- streams -------------------------------------------------------------------------------

function setConnection(value) {
  state.connection = value;
  const node = byId("connection");
  node.dataset.state = value;
  byId("connection-text").textContent = { live: "live", connecting: "connecting…", offline: "offline: reconnecting" }[value];
  if (value === "offline" && !state.signedIn) byId("connection-text").textContent = "offline";
}

function openStreams() {
  if (app.streams) app.streams.close();
  app.streams = new Streams({
    onEvent,
    onState: setConnection,
    onReconnect: () => {
      // events may have been missed (a restart, a dropped stream): reload what is shown
      state.reconnects += 1;
      refetch("candles", "markers", "status", "report", "approvals", "journal", "book");
    },
    canReconnect: async () => {
      // a stream given up with an HTTP error: is it the session (sign in again) or the server?
      const session = await currentSession();
      if (!session) signedOut("Your session has ended: sign in again.");
      return Boolean(session);
    },
  });
  app.streams.open();
}

function onEvent(channel, name, data) {
  state.events += 1;
  if (name === "resync") {
    refetch("candles", "markers", "status", "report", "approvals", "journal", "book");
    return;
  }
  if (channel === "market" && name === "tick") {
    refetch("candles");
    return;
  }
  if (channel === "persona" && name === "sentence" && data.decision_id && data.text) {
    const lines = app.live.get(data.decision_id) || [];
    lines.push(data.text);
    app.live.set(data.decision_id, lines.slice(-10));
    if (app.live.size > 50) app.live.delete(app.live.keys().next().value);
    return;
  }
  if (channel !== "desk") return;
  if (name === "decision") {
    state.lastDecisionId = data.id;
    app.market.addProvisional(data);
    syncMarket();
    fillSelector();
    if (byId("follow-latest").checked) showReport({ decision: data });
    refetch("markers", "status");
    return;
  }
  if (name === "fill") {
    app.market.addFill(data);
    syncMarket();
  }
  // the tick goes on (order, fill, pnl, risk_rejection, approval_pending), the desk changed
  // (status), or a tick's report is stored (recorded: its report, marker, bar and approval
  // can now be read): the stored state has moved
  refetch("candles", "markers", "status", "report", "approvals", "journal", "book");
}

window.tradecastConsole = {
  state, app, showView, selectDecision,
  hasMarker: (id) => Boolean(app.market && app.market.drawnMarker(id)),
  markerOutcome: (id) => (app.market && app.market.has(id) ? app.market.decisions.get(id).outcome : null),
};
boot();

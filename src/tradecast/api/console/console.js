/* tradecast operator console: sign-in, tabs, the live stream, and which view refetches what
 * when the desk says something changed.
 *
 * No polling: the page fetches on load, when a stream event, a `resync` or a reconnection says
 * something changed (the events of a burst make one refetch, at most a second after the
 * first), and when a view that missed changes while hidden is shown again. Each resource
 * applies only the newest answer it asked for (Latest in api.js): a refetch may start while
 * the previous one is in flight, and its answers may come back in any order.
 * `window.tradecastConsole.state` mirrors what the page shows, for tests and for debugging. */

import {
  api, ApiError, currentSession, Latest, setCsrfFailedHandler, setCsrfToken, setUnauthorizedHandler,
  signIn, signOut,
} from "./api.js";
import { BookView } from "./book.js";
import { ChatPanel } from "./chat.js";
import { ControlView } from "./control.js";
import { byId, debounce, el, fmtNum, fmtSigned, fmtTime, plural } from "./dom.js";
import { explanationCard, isComplete, outcomeOf } from "./explain.js";
import { legend, MarketChart, MAX_BARS, MAX_DECISIONS } from "./market.js";
import { Streams } from "./streams.js";

const ROLE_RANK = { viewer: 0, operator: 1, admin: 2 };
const SELECT_ROWS = 200; // decisions offered in the selector (newest first)
const ALL_CANDLES = MAX_BARS; // a full load: the whole series the API gives
const ALL_MARKERS = MAX_DECISIONS; // a full load: every decision and fill the API gives
const RECENT_MARKERS = 50; // markers refetched after an event (merged by id)
const RECENT_CANDLES = 50;
const REFETCH_QUIET_MS = 150; // a burst of events makes one refetch...
const REFETCH_MAX_WAIT_MS = 1000; // ...but a steady stream of them cannot put it off longer
const CONTROL_PARTS = ["approvals", "limits", "journal"];
/** What a reload of everything covers (after a resync or a reconnection). */
const EVERYTHING = ["candles", "markers", "latest", "report", "approvals", "limits", "journal", "book"];
/** What each refetchable thing is called in the error banner. */
const LABELS = {
  candles: "the candles", markers: "the decisions on the chart", status: "the desk's status",
  latest: "the latest decision", report: "the explained decision", approvals: "the approvals",
  limits: "the risk limits", journal: "the control journal", book: "the book",
};

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
  lastProvisional: null, // how the latest decision heard on the stream was first drawn
  selectedDecision: null, // the decision asked for (the card shows it once it is loaded)
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
  lastChat: null, // the latest chat answer as the page saw it: {partials, replied, command}
  events: 0,
  refetches: 0,
  reconnects: 0,
  resyncs: 0,
  loadErrors: [], // what failed to load and is in the error banner
  errors: [],
};

const app = {
  streams: null,
  market: null,
  book: null,
  control: null,
  chat: null,
  report: null, // the report the explanation card shows
  dirty: new Set(), // views to reload when next shown
  pending: new Set(), // what the next refetch covers
  full: new Set(), // "candles" / "markers": the next load of it takes everything, not the latest
  failures: new Map(), // what failed to load -> why (the error banner)
  decisionEvents: 0, // `decision` events heard (a snapshot asked before one is older than it)
  announced: "", // the explanation's status line as last announced
  latest: { candles: new Latest(), markers: new Latest(), status: new Latest(), report: new Latest() },
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
  setCsrfFailedHandler(renewSession);
  bindTabs();
  byId("signin-form").addEventListener("submit", onSignIn);
  // the form is bound: from now on a submit goes to POST /v1/session, never into a URL
  byId("signin-submit").disabled = false;
  byId("sign-out").addEventListener("click", onSignOut);
  byId("load-retry").addEventListener("click", () => refetch(...app.failures.keys()));
  byId("decision-select").addEventListener("change", (event) => {
    byId("follow-latest").checked = false;
    selectDecision(event.target.value);
  });
  byId("follow-latest").addEventListener("change", (event) => {
    if (event.target.checked && state.lastDecisionId) selectDecision(state.lastDecisionId);
  });
  let session = null;
  let trouble = "";
  try {
    session = await currentSession();
  } catch (error) {
    note(error);
    trouble = `The server did not answer (${error.message}): sign in to try again.`;
  }
  // signed in with the form while this was asked: that session is newer than this answer
  if (state.signedIn) return;
  if (session) await start(session);
  else showSignIn(trouble);
}

async function onSignIn(event) {
  event.preventDefault();
  const button = byId("signin-submit");
  const input = byId("api-key");
  const error = byId("signin-error");
  if (button.disabled) return;
  error.textContent = "";
  button.disabled = true;
  let session;
  try {
    session = await signIn(input.value.trim());
  } catch (err) {
    error.textContent = err instanceof ApiError && err.status === 401
      ? "That key is not valid." : `Sign-in failed: ${err.message}`;
    input.focus();
    return;
  } finally {
    button.disabled = false;
  }
  input.value = "";
  await start(session);
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
  app.failures.clear();
  showFailures();
  setConnection("offline");
  showSignIn(message);
}

/** After a 403 csrf_failed: read the session again (the browser may have signed in elsewhere,
 * which changed the token and perhaps the role); true when there is one to retry with. */
async function renewSession() {
  const session = await currentSession();
  if (!session) {
    signedOut("Your session has ended: sign in again.");
    return false;
  }
  if (!state.signedIn) return false;
  applySession(session);
  return true;
}

/** The session's role, name and token, and what the role may see. */
function applySession(session) {
  const roleChanged = state.role !== session.role;
  state.signedIn = true;
  state.role = session.role;
  state.name = session.name;
  state.expiresAt = session.expires_at;
  setCsrfToken(session.csrf_token);
  document.body.dataset.signedIn = "true";
  document.body.dataset.role = session.role;
  byId("who-name").textContent = session.name;
  byId("who-role").textContent = session.role;
  if (!roleChanged) return;
  // what the role may not use is hidden (and out of the accessibility tree); tab panels are
  // shown by showView, which also hides the panel of a hidden tab
  for (const node of document.querySelectorAll("[data-min-role]")) {
    if (node.getAttribute("role") !== "tabpanel") node.hidden = !hasRole(node.dataset.minRole);
  }
  if (hasRole("operator") && !app.control) {
    app.control = new ControlView({
      state, isAdmin: () => hasRole("admin"), onChanged: (what) => afterControl(what),
    });
    app.chat = new ChatPanel(state, { onReply: () => refetch("limits", "status", "journal", "approvals") });
  }
  if (app.market) {
    markDirty("control");
    if (app.control && app.control.limits) app.control.showLimits(app.control.limits); // admin or not
  }
  showView(hasRole("operator") || state.view !== "control" ? state.view : "market");
}

async function start(session) {
  if (state.signedIn) {
    applySession(session); // signed in again (the form after a late check): a newer token
    return;
  }
  applySession(session);
  byId("signin").hidden = true;
  byId("app").hidden = false;
  byId("who").hidden = false;

  if (!app.market) {
    app.market = new MarketChart(byId("market-chart"), {
      onSelect: (id) => { byId("follow-latest").checked = false; selectDecision(id); showView("tick"); },
      onFirstPaint: (ms) => { if (state.firstChartPaintMs === null) state.firstChartPaintMs = Math.round(ms); },
    });
    byId("market-legend").replaceChildren(...legend());
    app.book = new BookView(state);
  }
  // the stream first: what happens while the views load is heard (and refetched), not lost
  openStreams();
  await loadAll();
}

// ---- the first load and the refetches -----------------------------------------------------

/** Everything the visible views need, in parallel (the chart's candles and markers whole). */
async function loadAll() {
  app.full.add("candles");
  app.full.add("markers");
  await Promise.all([
    attempt("candles", refreshCandles), attempt("markers", refreshMarkers), attempt("latest", refreshLatest),
  ]);
  markDirty("book", "control");
  await loadView(state.view);
}

/** Reload everything, the chart's candles, markers and fills whole: events may have been
 * missed (a resync, or the stream came back after an error: a restart, a long gap). */
function reloadEverything() {
  app.full.add("candles");
  app.full.add("markers");
  refetch(...EVERYTHING);
}

/** `symbol=...&` once the desk's symbol is known (the API's default is the desk's). */
function symbolQuery() {
  return state.symbol ? `symbol=${encodeURIComponent(state.symbol)}&` : "";
}

function markDirty(...views) {
  for (const view of views) app.dirty.add(view);
}

/** Run a load; a failure goes into the error banner (with Retry), a success takes it out. */
async function attempt(what, job) {
  try {
    await job();
    loaded(what);
    return true;
  } catch (error) {
    failed(what, error);
    return false;
  }
}

function loaded(what) {
  if (app.failures.delete(what)) showFailures();
}

function failed(what, error) {
  if (error instanceof ApiError && error.status === 401) return; // handled: back to sign-in
  note(error);
  app.failures.set(what, error && error.message ? error.message : String(error));
  showFailures();
}

function showFailures() {
  state.loadErrors = [...app.failures.keys()];
  const banner = byId("load-error");
  banner.hidden = app.failures.size === 0;
  if (!app.failures.size) return;
  const what = state.loadErrors.map((key) => LABELS[key] || key).join(", ");
  const why = [...app.failures.values()].pop();
  byId("load-error-text").textContent = `Could not load ${what} (${why}).`;
}

/** Load a view's data if it is visible and changed since it was last loaded. */
async function loadView(view) {
  if (view !== state.view || !app.dirty.has(view)) return;
  app.dirty.delete(view);
  const jobs = [];
  if (view === "book") jobs.push(attempt("book", () => app.book.load()));
  if (view === "control" && app.control) {
    for (const part of CONTROL_PARTS) jobs.push(attempt(part, () => app.control.load(part)));
  }
  const results = await Promise.all(jobs);
  if (results.includes(false)) app.dirty.add(view); // shown again later: try again
}

/** Ask for a refetch of `what` (candles, markers, status, latest, report, approvals, limits,
 * journal, book); the requests of a burst of events are served together. */
function refetch(...what) {
  for (const item of what) app.pending.add(item);
  runRefetch();
}

const LOADERS = {
  candles: refreshCandles, markers: refreshMarkers, status: refreshStatus, latest: refreshLatest,
  report: refreshReport,
};

const runRefetch = debounce(() => {
  if (!state.signedIn) return undefined;
  const what = new Set(app.pending);
  app.pending.clear();
  state.refetches += 1;
  const jobs = [];
  for (const [name, load] of Object.entries(LOADERS)) {
    if (what.has(name)) jobs.push(attempt(name, load));
  }
  if (what.has("book")) {
    markDirty("book");
    if (state.view === "book") jobs.push(loadView("book"));
    else loaded("book"); // reloaded whole when the view is shown
  }
  const parts = CONTROL_PARTS.filter((part) => what.has(part));
  if (app.control && parts.length) {
    if (state.view === "control") {
      for (const part of parts) jobs.push(attempt(part, () => app.control.load(part)));
    } else {
      markDirty("control");
      for (const part of parts) loaded(part); // reloaded whole when the view is shown
    }
  }
  return Promise.all(jobs);
}, REFETCH_QUIET_MS, { maxWait: REFETCH_MAX_WAIT_MS });

async function refreshCandles() {
  // an empty chart, a gap or a reload of everything takes the whole series
  const full = app.full.has("candles") || !app.market.times.length;
  const ticket = app.latest.candles.ticket();
  const page = await api(`/v1/market/candles?${symbolQuery()}limit=${full ? ALL_CANDLES : RECENT_CANDLES}`);
  if (!ticket.apply()) return;
  state.symbol = page.symbol;
  state.timeframe = page.timeframe;
  if (full) {
    app.full.delete("candles");
    app.market.setCandles(page.items);
  } else if (!app.market.mergeCandles(page.items)) {
    app.full.add("candles"); // bars missing between the chart and these
    await refreshCandles();
    return;
  }
  syncMarket();
}

async function refreshMarkers() {
  const full = app.full.has("markers") || !app.market.decisions.size;
  const ticket = app.latest.markers.ticket();
  const page = await api(`/v1/decisions/markers?${symbolQuery()}limit=${full ? ALL_MARKERS : RECENT_MARKERS}`);
  if (!ticket.apply()) return;
  if (full) {
    // every marker and fill again: what was drawn from the stream alone goes
    app.full.delete("markers");
    app.market.setMarkers(page);
  } else {
    app.market.mergeMarkers(page);
  }
  syncMarket();
  fillSelector();
}

async function refreshStatus() {
  const ticket = app.latest.status.ticket();
  const [status, portfolio, positions] = await Promise.all([
    api("/v1/desk/status"), api("/v1/portfolio"), api("/v1/positions"),
  ]);
  if (!ticket.apply()) return;
  showStatus(status, portfolio);
  showPosition(positions.items);
}

/** Whether the card follows the latest decision (or shows none yet). */
function following() {
  return byId("follow-latest").checked || !state.selectedDecision;
}

/** The snapshot: the desk's status and the latest stored decision (shown when following). */
async function refreshLatest() {
  const statusTicket = app.latest.status.ticket();
  const reportTicket = following() ? app.latest.report.ticket() : null;
  const decisionsHeard = app.decisionEvents;
  const [snap, positions] = await Promise.all([api("/v1/snapshot"), api("/v1/positions")]);
  if (statusTicket.apply()) {
    showStatus(snap.status, snap.portfolio);
    showPosition(positions.items);
  }
  const report = snap.decision;
  // a decision heard on the stream meanwhile is newer than this snapshot's
  if (!report || app.decisionEvents !== decisionsHeard) return;
  const id = reportId(report);
  state.lastDecisionId = id;
  if (reportTicket && following() && reportTicket.apply()) {
    state.selectedDecision = id;
    showReport(report);
  }
}

/** The selected decision's report, until it is complete (stored, with the gate's verdict,
 * and not waiting for a human's answer). */
async function refreshReport() {
  const id = state.selectedDecision;
  if (!id || (state.explained === id && state.explainedComplete)) return;
  await loadReport(id);
}

/** Load decision `id`'s report and show it, unless another decision was selected meanwhile
 * or a newer answer was shown already. A 404 is a report not stored yet. */
async function loadReport(id) {
  const ticket = app.latest.report.ticket();
  let report;
  try {
    report = await api(`/v1/decisions/${encodeURIComponent(id)}`);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return; // not stored yet
    throw error;
  }
  if (state.selectedDecision !== id || !ticket.apply()) return;
  showReport(report);
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

/** The decision selector: rebuilt only when its rows changed (the select element stays, and
 * so does the focus on it). */
function fillSelector() {
  const select = byId("decision-select");
  const rows = app.market.recent(SELECT_ROWS)
    .map((item) => [item.id, `${fmtTime(item.t)} · ${item.action} · ${item.outcome || "deciding"}`]);
  if (!rows.length) rows.push(["", "no decision yet"]);
  const key = rows.map((row) => row.join("\u0000")).join("\u0001");
  if (key !== app.selectorKey) {
    app.selectorKey = key;
    select.replaceChildren(...rows.map(([value, text]) => el("option", { value, text })));
  }
  const id = state.explained;
  if (id && app.market.has(id) && select.value !== id) select.value = id;
}

function reportId(report) {
  return report.decision ? report.decision.id : report.id;
}

function showReport(report) {
  app.report = report;
  const id = reportId(report);
  state.explained = id;
  state.selectedDecision = id;
  state.explainedComplete = isComplete(report);
  byId("explain").replaceChildren(explanationCard(report));
  // the card is not a live region (it would be read whole at every change): one short line is
  const d = report.decision;
  const line = d
    ? `Decision ${d.action} ${d.symbol}: ${outcomeOf(report)}${state.explainedComplete ? "" : ", not final yet"}.`
    : "This tick decided nothing.";
  if (line !== app.announced) {
    app.announced = line;
    byId("explain-status").textContent = line;
  }
  app.market.select(id);
  const select = byId("decision-select");
  if ([...select.options].some((o) => o.value === id)) select.value = id;
}

/** The decision heard on the stream, while its tick runs (a stored report of it stays). */
function showProvisional(decision) {
  if (state.explained === decision.id && app.report && app.report.status) return;
  state.selectedDecision = decision.id;
  showReport({ decision });
}

async function selectDecision(id) {
  if (!id) return;
  state.selectedDecision = id;
  app.market.select(id);
  await attempt("report", () => loadReport(id));
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

// ---- the stream ------------------------------------------------------------------------------

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
      // events may have been missed (a restart, a dropped stream): reload everything
      state.reconnects += 1;
      reloadEverything();
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

/** What a desk event changes: only that is fetched again. */
function onEvent(channel, name, data) {
  state.events += 1;
  switch (name) {
    case "resync": // the server cannot say what was missed
      state.resyncs += 1;
      reloadEverything();
      break;
    case "decision": // drawn and explained at once; the rest comes with `recorded`
      app.decisionEvents += 1;
      state.lastDecisionId = data.id;
      app.market.addProvisional(data);
      state.lastProvisional = { id: data.id, action: data.action, marker: app.market.markerOf(data.id) };
      syncMarket();
      fillSelector();
      if (byId("follow-latest").checked) showProvisional(data);
      refetch("status");
      break;
    case "fill":
      app.market.addFill(data);
      syncMarket();
      refetch("status", "book");
      break;
    case "order":
    case "pnl":
    case "risk_rejection":
      refetch("status", "book");
      break;
    case "approval_pending":
      refetch("status", "approvals");
      break;
    case "status": // the desk changed (paused, resumed, limits changed, an error...)
      if (data && data.limits && app.control) app.control.limitsChanged(data.limits);
      else refetch("limits");
      refetch("status", "journal");
      break;
    case "recorded": // a tick's report is stored (or an approval's answer): all of it can be read
      refetch("candles", "markers", "status", "report", "approvals", "journal", "book");
      if (byId("follow-latest").checked && state.lastDecisionId && state.selectedDecision !== state.lastDecisionId) {
        selectDecision(state.lastDecisionId);
      }
      break;
    default:
      break;
  }
}

window.tradecastConsole = {
  state, app, showView, selectDecision,
  hasMarker: (id) => Boolean(app.market && app.market.drawnMarker(id)),
  markerOutcome: (id) => (app.market && app.market.has(id) ? app.market.decisions.get(id).outcome : null),
  markerOf: (id) => (app.market ? app.market.markerOf(id) : null),
};
boot();

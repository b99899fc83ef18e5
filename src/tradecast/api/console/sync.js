/* Which view refetches what, and when: the first load, the refetches that the desk's stream
 * events ask for (a `decision` is drawn at once, the rest is read once it is `recorded`), and
 * the views that reload when they are shown again.
 *
 * No polling: the page fetches on load, when a stream event, a `resync` or a reconnection says
 * something changed (the events of a burst make one refetch, at most a second after the
 * first), and when a view that missed changes while hidden is shown again. Each resource
 * applies only the newest answer it asked for (Latest in api.js): a refetch may start while
 * the previous one is in flight, and its answers may come back in any order.
 * A view that is not shown is only marked dirty, and is reloaded whole when it is shown. */

import { api } from "./api.js";
import { byId, debounce, fmtNum, fmtSigned, fmtTime, plural } from "./dom.js";
import { MAX_BARS, MAX_DECISIONS } from "./market.js";
import {
  fillSelector, following, loadReport, reportId, selectDecision, showProvisional, showReport,
} from "./selection.js";
import { app, attempt, loaded, state } from "./state.js";

const ALL_CANDLES = MAX_BARS; // a full load: the whole series the API gives
const ALL_MARKERS = MAX_DECISIONS; // a full load: every decision and fill the API gives
const RECENT_MARKERS = 50; // markers refetched after an event (merged by id)
const RECENT_CANDLES = 50;
const REFETCH_QUIET_MS = 150; // a burst of events makes one refetch...
const REFETCH_MAX_WAIT_MS = 1000; // ...but a steady stream of them cannot put it off longer
const CONTROL_PARTS = ["approvals", "limits", "journal"];
/** What a reload of everything covers (after a resync or a reconnection). */
const EVERYTHING = ["candles", "markers", "latest", "report", "approvals", "limits", "journal", "book"];

/** Everything the visible views need, in parallel (the chart's candles and markers whole). */
export async function loadAll() {
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
export function reloadEverything() {
  app.full.add("candles");
  app.full.add("markers");
  refetch(...EVERYTHING);
}

/** `symbol=...&` once the desk's symbol is known (the API's default is the desk's). */
function symbolQuery() {
  return state.symbol ? `symbol=${encodeURIComponent(state.symbol)}&` : "";
}

export function markDirty(...views) {
  for (const view of views) app.dirty.add(view);
}

/** Load a view's data if it is visible and changed since it was last loaded. */
export async function loadView(view) {
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
export function refetch(...what) {
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

export function afterControl(what) {
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

// ---- the desk's stream events ----------------------------------------------------------------

/** What a desk event changes: only that is fetched again. */
export function onEvent(channel, name, data) {
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

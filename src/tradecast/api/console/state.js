/* What the operator console knows, shared by its modules: `state`, which mirrors what the page
 * shows (`window.tradecastConsole.state`, for tests and for debugging); `app`, the views and
 * the refetch bookkeeping; and what went wrong: the error log and the banner naming what
 * failed to load (with Retry).
 *
 * Nothing here fetches or decides: console.js signs in and makes the views, sync.js decides
 * what they reload, selection.js which decision the explanation card shows. */

import { ApiError, Latest } from "./api.js";
import { byId } from "./dom.js";

/** What each refetchable thing is called in the error banner. */
const LABELS = {
  candles: "the candles", markers: "the decisions on the chart", status: "the desk's status",
  latest: "the latest decision", report: "the explained decision", approvals: "the approvals",
  limits: "the risk limits", journal: "the control journal", book: "the book",
};

export const state = {
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
  firstChartPaintMs: null, // performance.now() when the candles were first drawn
  firstMarkersPaintMs: null, // ... and when the decisions' markers were first drawn on them
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

export const app = {
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

export function note(error) {
  if (error instanceof ApiError && error.status === 401) return; // handled: back to sign-in
  console.warn(error);
  state.errors.push(String(error && error.message ? error.message : error));
  if (state.errors.length > 20) state.errors.shift();
}

// ---- what failed to load -----------------------------------------------------------------

/** Run a load; a failure goes into the error banner (with Retry), a success takes it out. */
export async function attempt(what, job) {
  try {
    await job();
    loaded(what);
    return true;
  } catch (error) {
    failed(what, error);
    return false;
  }
}

export function loaded(what) {
  if (app.failures.delete(what)) showFailures();
}

function failed(what, error) {
  if (error instanceof ApiError && error.status === 401) return; // handled: back to sign-in
  note(error);
  app.failures.set(what, error && error.message ? error.message : String(error));
  showFailures();
}

export function showFailures() {
  state.loadErrors = [...app.failures.keys()];
  const banner = byId("load-error");
  banner.hidden = app.failures.size === 0;
  if (!app.failures.size) return;
  const what = state.loadErrors.map((key) => LABELS[key] || key).join(", ");
  const why = [...app.failures.values()].pop();
  byId("load-error-text").textContent = `Could not load ${what} (${why}).`;
}

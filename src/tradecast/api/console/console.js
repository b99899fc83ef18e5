/* tradecast operator console, the module index.html loads: the page shell. Sign-in and
 * sign-out, the session and what its role may see, the tabs, and the desk's live stream.
 *
 * What each view (re)loads, and on which stream event, is in sync.js; which decision the
 * explanation card shows in selection.js; what the page knows, and what failed to load, in
 * state.js. `window.tradecastConsole` exposes the state and a few hooks, for tests and for
 * debugging. */

import {
  ApiError, currentSession, setCsrfFailedHandler, setCsrfToken, setUnauthorizedHandler, signIn,
  signOut,
} from "./api.js";
import { BookView } from "./book.js";
import { ChatPanel } from "./chat.js";
import { ControlView } from "./control.js";
import { byId } from "./dom.js";
import { legend, MarketChart } from "./market.js";
import { selectDecision } from "./selection.js";
import { app, note, showFailures, state } from "./state.js";
import { Streams } from "./streams.js";
import {
  afterControl, loadAll, loadView, markDirty, onEvent, refetch, reloadEverything,
} from "./sync.js";

const ROLE_RANK = { viewer: 0, operator: 1, admin: 2 };

function hasRole(min) {
  return state.role !== null && ROLE_RANK[state.role] >= ROLE_RANK[min];
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
      onMarkersPaint: (ms) => { if (state.firstMarkersPaintMs === null) state.firstMarkersPaintMs = Math.round(ms); },
    });
    byId("market-legend").replaceChildren(...legend());
    app.book = new BookView(state);
  }
  // the stream first: what happens while the views load is heard (and refetched), not lost
  openStreams();
  await loadAll();
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

window.tradecastConsole = {
  state, app, showView, selectDecision,
  hasMarker: (id) => Boolean(app.market && app.market.drawnMarker(id)),
  markerOutcome: (id) => (app.market && app.market.has(id) ? app.market.decisions.get(id).outcome : null),
  markerOf: (id) => (app.market ? app.market.markerOf(id) : null),
};
boot();

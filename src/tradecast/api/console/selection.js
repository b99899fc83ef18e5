/* The decision the explanation card shows: picked in the selector, by a click on its marker,
 * or the latest one while "follow latest" is checked. Its report is loaded until it is
 * complete; a decision heard on the stream is shown at once, provisionally, until its report
 * is stored. Only the newest answer asked for is shown, and only while its decision is still
 * the selected one. The card is not a live region: one short status line says what came of
 * the decision. */

import { api, ApiError } from "./api.js";
import { byId, el, fmtTime } from "./dom.js";
import { explanationCard, isComplete, outcomeOf } from "./explain.js";
import { app, attempt, state } from "./state.js";

const SELECT_ROWS = 200; // decisions offered in the selector (newest first)

/** Whether the card follows the latest decision (or shows none yet). */
export function following() {
  return byId("follow-latest").checked || !state.selectedDecision;
}

/** Load decision `id`'s report and show it, unless another decision was selected meanwhile
 * or a newer answer was shown already. A 404 is a report not stored yet. */
export async function loadReport(id) {
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

/** The decision selector: rebuilt only when its rows changed (the select element stays, and
 * so does the focus on it). */
export function fillSelector() {
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

export function reportId(report) {
  return report.decision ? report.decision.id : report.id;
}

export function showReport(report) {
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
export function showProvisional(decision) {
  if (state.explained === decision.id && app.report && app.report.status) return;
  state.selectedDecision = decision.id;
  showReport({ decision });
}

export async function selectDecision(id) {
  if (!id) return;
  state.selectedDecision = id;
  app.market.select(id);
  await attempt("report", () => loadReport(id));
}

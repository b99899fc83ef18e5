/* "The tick, explained": one decision's report as a card. Who voted what (one card per agent
 * of decision.attribution, with confidence, weight and the agent's note), the similar past
 * decisions the memory recalled, the trader's tool calls, the risk gate's verdict, the LLM
 * calls, tokens and latency per node, and what the persona said.
 *
 * It renders a full report (GET /v1/decisions/{id}) or, while the tick is still running, just
 * the decision from the stream's `decision` event. The card says when the report is stored
 * (data-stored="true"), and is complete (data-complete="true") once it is stored with the
 * gate's verdict and no longer waits for a human: a report awaiting approval is shown as it is
 * and reloaded when the answer (and the fill) is stored.
 * All text is written as text (see dom.js). */

import { badge, el, fmtNum, fmtPct, fmtSigned, fmtTime } from "./dom.js";

const AGENT_NAMES = {
  analyst: "Analyst (LLM)", risk: "Risk (LLM)", trader: "Trader (LLM)", persona: "Persona",
  rules: "Rules", trend: "Trend", mean_reversion: "Mean reversion", breakout: "Breakout",
  dca: "DCA", consensus: "Consensus",
};

export function agentName(agent) {
  return AGENT_NAMES[agent] || agent;
}

/** Whether `report` is final: stored with the gate's verdict, and not waiting for a human. */
export function isComplete(report) {
  return Boolean(report && report.risk && report.status !== "awaiting_approval");
}

/** What came of a decision, in one word. */
export function outcomeOf(report) {
  const decision = report.decision;
  if (!decision) return "none";
  if (report.status === "awaiting_approval") return "waiting";
  if (!report.risk) return decision.action === "HOLD" ? "hold" : "deciding";
  if (decision.action === "HOLD") return "hold";
  if ((report.fills || []).length) return "filled";
  if (report.risk && !report.risk.approved) return "rejected";
  if (report.risk && report.risk.approval === "rejected") return "rejected";
  return "unfilled";
}

function section(title, ...content) {
  return el("section", { class: "explain-part" }, el("h4", { text: title }), ...content);
}

function agentCard(row, decisionId, totalWeight) {
  const share = totalWeight > 0 ? row.weight / totalWeight : 0;
  return el("article", {
    class: `agent${row.abstained ? " abstained" : ""}`,
    dataset: { agent: row.agent, decisionId, action: row.action },
    "aria-label": `${agentName(row.agent)}: ${row.abstained ? "abstained" : row.action}`,
  },
  el("h5", {}, agentName(row.agent), " ", row.abstained ? badge("abstained", "muted") : badge(row.action)),
  el("dl", { class: "facts" },
    el("dt", { text: "confidence" }), el("dd", { text: fmtPct(row.confidence, 0) }),
    el("dt", { text: "weight" }),
    el("dd", { text: `${fmtNum(row.weight, 3)} (${fmtPct(share, 0)} of the vote)` })),
  el("div", { class: "weight-bar", "aria-hidden": "true" },
    el("span", { style: `width:${Math.round(share * 100)}%` })),
  row.note ? el("p", { class: "note", text: row.note }) : null,
  row.weight_note ? el("p", { class: "muted small", text: row.weight_note }) : null);
}

function memoryList(hits) {
  if (!hits || !hits.length) return el("p", { class: "muted", text: "No similar past decision recalled." });
  return el("ul", { class: "plain" }, hits.map((hit) => {
    const returns = Object.entries(hit.outcome_returns || {})
      .map(([horizon, value]) => `${horizon} ${fmtSigned(value * 100, 1)}%`).join(", ");
    return el("li", {},
      badge(hit.action), ` ${fmtTime(hit.decided_at)} · similarity ${fmtNum(hit.similarity, 2)}`,
      returns ? ` · then ${returns}` : " · outcome not known yet",
      hit.stop_hit ? " · stop hit" : "");
  }));
}

function toolCalls(llm) {
  const calls = [];
  for (const call of (llm && llm.by_agent) || []) {
    for (const text of call.tool_calls || []) calls.push(el("li", {}, el("code", { text }), ` (${agentName(call.agent)})`));
  }
  if (!calls.length) return el("p", { class: "muted", text: "No tool calls." });
  return el("ul", { class: "plain" }, calls);
}

function riskPart(report) {
  const risk = report.risk;
  if (!risk) return el("p", { class: "muted", text: "The risk gate has not ruled yet." });
  const verdict = risk.approved ? badge("approved", "filled") : badge("refused", "rejected");
  const parts = [el("p", {}, "Verdict: ", verdict, risk.shrunk ? " (order size cut)" : "",
    risk.approval && risk.approval !== "not_required" ? ` · human review: ${risk.approval}` : "")];
  if (risk.reasons && risk.reasons.length) {
    parts.push(el("ul", { class: "plain reasons" }, risk.reasons.map((r) => el("li", { text: r }))));
  }
  return parts;
}

function llmPart(llm, latency) {
  if (!llm) return el("p", { class: "muted", text: "Not recorded yet." });
  const rows = (llm.by_agent || []).map((call) => el("tr", {},
    el("td", { text: agentName(call.agent) }),
    el("td", { text: call.ok ? "ok" : `failed${call.error ? `: ${call.error}` : ""}` }),
    el("td", { class: "num", text: String(call.prompt_tokens) }),
    el("td", { class: "num", text: String(call.completion_tokens) }),
    el("td", { class: "num", text: fmtNum(call.latency_ms, 0) })));
  const nodes = Object.entries(latency || {}).sort((a, b) => b[1] - a[1]);
  return [
    el("p", { text: `${llm.calls} calls (${llm.failed} failed), ${llm.prompt_tokens} prompt + ${llm.completion_tokens} completion tokens.` }),
    rows.length ? el("table", { class: "compact" },
      el("caption", { class: "sr-only", text: "LLM calls by agent" }),
      el("thead", {}, el("tr", {}, ["agent", "result", "prompt", "completion", "ms"].map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, rows)) : null,
    nodes.length ? el("table", { class: "compact" },
      el("caption", { text: "Latency per node (ms)" }),
      el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "node" }), el("th", { scope: "col", text: "ms" }))),
      el("tbody", {}, nodes.map(([node, ms]) => el("tr", {}, el("td", { text: node }), el("td", { class: "num", text: fmtNum(ms, 0) }))))) : null,
  ];
}

function orderPart(report) {
  const order = report.order;
  const fills = report.fills || [];
  if (!order && !fills.length) return el("p", { class: "muted", text: "No order." });
  return [
    order ? el("p", {}, `Order ${order.intent.side} ${fmtNum(order.intent.quantity, 6)} ${order.intent.symbol}: `,
      badge(order.status, order.status === "filled" ? "filled" : "muted"),
      order.reason ? ` ${order.reason}` : "") : null,
    fills.length ? el("ul", { class: "plain" }, fills.map((f) => el("li", {
      text: `${f.side} ${fmtNum(f.quantity, 6)} @ ${fmtNum(f.price)} (fee ${fmtNum(f.fee, 4)}) at ${fmtTime(f.timestamp)}`,
    }))) : null,
  ];
}

/** The card of `report` ({decision, status, risk, order, fills, persona, llm, latency_ms}, or
 * only {decision} while the tick runs). */
export function explanationCard(report) {
  const d = report.decision;
  if (!d) {
    return el("article", { class: "explain", dataset: { decisionId: report.id || "" } },
      el("p", { class: "muted", text: "This tick decided nothing." }));
  }
  const complete = isComplete(report);
  const outcome = outcomeOf(report);
  const attribution = d.attribution || [];
  const total = attribution.reduce((sum, row) => sum + (row.abstained ? 0 : row.weight), 0);
  const persona = report.persona && report.persona.text ? report.persona.text : "";
  const qty = Number(d.quantity) ? ` ${fmtNum(d.quantity, 6)}` : "";
  return el("article", {
    class: "explain",
    dataset: { decisionId: d.id, stored: String(Boolean(report.status)), complete: String(complete), outcome },
    "aria-label": `Decision ${d.id}`,
  },
  el("header", { class: "explain-head" },
    el("h3", {}, badge(d.action), ` ${d.symbol}${qty} @ ${fmtNum(d.price)}`),
    el("p", {},
      badge(outcome), ` decided ${fmtTime(d.decided_at)} · confidence ${fmtPct(d.confidence, 0)}`,
      d.regime ? ` · regime ${d.regime}` : "",
      complete ? "" : outcome === "waiting" ? " · waiting for a human's answer" : " · tick still running…"),
    el("p", { class: "muted small", text: `id ${d.id}` })),
  d.rationale ? el("p", { class: "rationale", text: d.rationale }) : null,
  d.sizing ? el("p", { class: "muted small", text: `Sizing: ${d.sizing}` }) : null,
  section(`Agents (${attribution.length})`,
    el("div", { class: "agents" }, attribution.map((row) => agentCard(row, d.id, total)))),
  el("div", { class: "explain-grid" },
    section("Risk gate", riskPart(report)),
    section("Order and fills", orderPart(report)),
    section("Trader's tool calls", toolCalls(report.llm)),
    section("Memory: similar past decisions", memoryList(d.memory_hits)),
    d.news && d.news.length ? section("News read", el("ul", { class: "plain" },
      d.news.map((n) => el("li", { text: `${n.title} (${n.source}, ${fmtTime(n.published_at)})` })))) : null,
    section("LLM calls, tokens and latency", llmPart(report.llm, report.latency_ms)),
    section("Persona", persona
      ? el("blockquote", { class: "persona", text: persona }, report.persona && report.persona.emotion ? el("span", { class: "muted small", text: ` (${report.persona.emotion})` }) : null)
      : el("p", { class: "muted", text: complete ? "Said nothing." : "…" }))));
}

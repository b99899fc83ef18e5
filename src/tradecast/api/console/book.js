/* The book: equity against buy-and-hold with the drawdown below it (GET
 * /v1/portfolio/history), the P&L figures (GET /v1/portfolio) and the positions, orders and
 * fills tables (the latest rows only: the API pages, the page never draws thousands of rows).
 *
 * The chart is made the first time the view is shown (a chart in a hidden panel has no size),
 * and the view loads only when it is visible or becomes visible after a change. Only the newest
 * load is shown: one that comes back after a later one is dropped. */

import { api, Latest } from "./api.js";
import { byId, el, fillTable, fmtNum, fmtPct, fmtSigned, fmtTime, num, tableHead } from "./dom.js";

const ROWS = 100;

const POSITION_COLUMNS = [
  ["symbol", (p) => p.symbol],
  ["quantity", (p) => fmtNum(p.quantity, 6)],
  ["avg price", (p) => fmtNum(p.avg_price)],
  ["mark", (p) => fmtNum(p.price)],
  ["value", (p) => fmtNum(p.market_value)],
  ["unrealised", (p) => fmtSigned(p.unrealized_pnl)],
  ["stop loss", (p) => fmtNum(p.stop_loss)],
  ["take profit", (p) => fmtNum(p.take_profit)],
  ["opened", (p) => fmtTime(p.opened_at)],
];
const ORDER_COLUMNS = [
  ["created", (o) => fmtTime(o.created_at)],
  ["side", (o) => o.intent.side],
  ["quantity", (o) => fmtNum(o.intent.quantity, 6)],
  ["symbol", (o) => o.intent.symbol],
  ["type", (o) => o.intent.order_type],
  ["status", (o) => o.status],
  ["reason", (o) => o.reason || ""],
];
const FILL_COLUMNS = [
  ["time", (f) => fmtTime(f.timestamp)],
  ["side", (f) => f.side],
  ["quantity", (f) => fmtNum(f.quantity, 6)],
  ["price", (f) => fmtNum(f.price)],
  ["fee", (f) => fmtNum(f.fee, 4)],
  ["symbol", (f) => f.symbol],
];

export class BookView {
  constructor(state) {
    this.state = state;
    this.chart = null;
    this.latest = new Latest();
    tableHead(byId("positions-table").tHead, POSITION_COLUMNS);
    tableHead(byId("orders-table").tHead, ORDER_COLUMNS);
    tableHead(byId("fills-table").tHead, FILL_COLUMNS);
  }

  makeChart() {
    const LC = window.LightweightCharts;
    this.chart = LC.createChart(byId("equity-chart"), {
      autoSize: true,
      layout: { background: { type: "solid", color: "#0b1020" }, textColor: "#e5e7eb", fontFamily: "system-ui, sans-serif" },
      grid: { vertLines: { color: "#1f2937" }, horzLines: { color: "#1f2937" } },
      timeScale: { borderColor: "#374151", timeVisible: true, secondsVisible: false },
      rightPriceScale: { borderColor: "#374151" },
    });
    this.equity = this.chart.addSeries(LC.LineSeries, { color: "#60a5fa", lineWidth: 2, title: "equity" });
    this.hold = this.chart.addSeries(LC.LineSeries, { color: "#fbbf24", lineWidth: 1, title: "buy & hold" });
    // the drawdown in its own pane below, as a negative percentage
    this.drawdown = this.chart.addSeries(LC.AreaSeries, {
      lineColor: "#f87171", topColor: "rgba(248,113,113,0.05)", bottomColor: "rgba(248,113,113,0.4)",
      lineWidth: 1, title: "drawdown %", priceFormat: { type: "percent" },
    }, 1);
    const panes = this.chart.panes();
    if (panes[1]) panes[1].setStretchFactor(0.35);
  }

  /** Everything the book shows, fetched in parallel. */
  async load() {
    if (!this.chart) this.makeChart();
    const ticket = this.latest.ticket();
    const [history, portfolio, orders, fills] = await Promise.all([
      api("/v1/portfolio/history"),
      api("/v1/portfolio"),
      api(`/v1/orders?limit=${ROWS}`),
      api(`/v1/fills?limit=${ROWS}`),
    ]);
    if (!ticket.apply()) return;
    this.showHistory(history);
    this.showPortfolio(portfolio);
    fillTable(byId("orders-table").tBodies[0], orders.items, ORDER_COLUMNS, { limit: ROWS, empty: "No orders yet." });
    fillTable(byId("fills-table").tBodies[0], fills.items, FILL_COLUMNS, { limit: ROWS, empty: "No fills yet." });
    this.state.fills = fills.items.length;
    byId("book").dataset.fills = String(fills.items.length);
  }

  showHistory(history) {
    const items = history.items || [];
    this.equity.setData(items.map((p) => ({ time: p.t, value: num(p.equity) })));
    this.hold.setData(items.map((p) => ({ time: p.t, value: num(p.buy_and_hold) })));
    this.drawdown.setData(items.map((p) => ({ time: p.t, value: -num(p.drawdown) * 100 })));
    if (items.length) this.chart.timeScale().fitContent();
    const last = items[items.length - 1];
    const worst = items.reduce((m, p) => Math.max(m, num(p.drawdown) || 0), 0);
    byId("equity-summary").textContent = last
      ? `From ${fmtNum(history.start_equity)} to ${fmtNum(last.equity)} since ${fmtTime(items[0].t)}; `
        + `buy and hold: ${fmtNum(last.buy_and_hold)}. Deepest drawdown ${fmtPct(worst, 2)}, now ${fmtPct(last.drawdown, 2)}.`
      : "No decision yet: the equity curve starts at the first decision.";
  }

  showPortfolio(p) {
    const figures = [
      ["Equity", fmtNum(p.equity)], ["Cash", fmtNum(p.cash)],
      ["Realised P&L", fmtSigned(p.realized_pnl)], ["Unrealised P&L", fmtSigned(p.unrealized_pnl)],
      ["Fees paid", fmtNum(p.fees_paid)], ["Open positions", String(p.open_positions)],
    ];
    byId("pnl-figures").replaceChildren(...figures.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })]));
    fillTable(byId("positions-table").tBodies[0], p.positions || [], POSITION_COLUMNS, { empty: "No open position." });
  }
}

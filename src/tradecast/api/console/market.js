/* The market view: the desk symbol's candlesticks (lightweight-charts) with one marker per
 * decision (buy, sell, hold, rejected, waiting, and "deciding" while its tick still runs) and
 * one per fill, and the open position's stop-loss / take-profit as price lines.
 *
 * Speed: a year of hourly bars (8,760) and a thousand decisions are drawn with one setData and
 * one setMarkers call; later updates only touch the last bars (series.update) and merge the
 * latest markers by id. Nothing here creates a DOM node per candle or per marker, and what is
 * kept is capped (MAX_BARS, MAX_DECISIONS, MAX_FILLS: the API's own limits) however long the
 * page stays open. */

import { el, fmtNum, fmtTime, num, plural } from "./dom.js";

export const MAX_BARS = 20000; // GET /v1/market/candles gives at most this many
export const MAX_DECISIONS = 10000; // GET /v1/decisions/markers likewise
const MAX_FILLS = 10000;

const COLORS = {
  up: "#22c55e", down: "#ef4444", buy: "#4ade80", sell: "#f87171", hold: "#94a3b8",
  rejected: "#fbbf24", waiting: "#60a5fa", unfilled: "#a1a1aa", fill: "#38bdf8", exit: "#f0abfc",
  deciding: "#e2e8f0",
  stop: "#f87171", target: "#4ade80", entry: "#cbd5e1", selected: "#facc15",
};

/** How a decision's marker looks, by what came of it (the word is in the legend too). A BUY or
 * SELL heard on the stream before its report is stored has no outcome yet: it is drawn as
 * "deciding" (a light dot with the action and an ellipsis), never as a filled arrow. */
function decisionMarker(item, time, selected) {
  const base = { time, id: item.id };
  const outcome = item.action === "HOLD" ? "hold" : item.outcome || "deciding";
  let marker;
  if (outcome === "hold") {
    marker = { ...base, position: "aboveBar", shape: "circle", color: COLORS.hold, size: 0.5 };
  } else if (outcome === "rejected") {
    marker = { ...base, position: "aboveBar", shape: "square", color: COLORS.rejected, text: "rejected" };
  } else if (outcome === "waiting") {
    marker = { ...base, position: "aboveBar", shape: "circle", color: COLORS.waiting, text: "approval?" };
  } else if (outcome === "unfilled") {
    marker = { ...base, position: "aboveBar", shape: "square", color: COLORS.unfilled, text: "unfilled" };
  } else if (outcome === "filled" && item.action === "BUY") {
    marker = { ...base, position: "belowBar", shape: "arrowUp", color: COLORS.buy, text: "BUY" };
  } else if (outcome === "filled") {
    marker = { ...base, position: "aboveBar", shape: "arrowDown", color: COLORS.sell, text: "SELL" };
  } else {
    marker = {
      ...base, position: item.action === "BUY" ? "belowBar" : "aboveBar", shape: "circle",
      color: COLORS.deciding, size: 0.8, text: `${item.action}\u2026`,
    };
  }
  if (selected) marker = { ...marker, color: COLORS.selected, size: 1.6 };
  return marker;
}

export class MarketChart {
  /** @param {{onSelect: (decisionId: string) => void, onFirstPaint: (ms: number) => void, onMarkersPaint?: (ms: number) => void}} hooks */
  constructor(container, hooks) {
    const LC = window.LightweightCharts;
    this.LC = LC;
    this.hooks = hooks;
    this.chart = LC.createChart(container, {
      autoSize: true,
      layout: {
        background: { type: "solid", color: "#0b1020" },
        textColor: "#e5e7eb",
        fontFamily: "system-ui, sans-serif",
      },
      grid: { vertLines: { color: "#1f2937" }, horzLines: { color: "#1f2937" } },
      rightPriceScale: { borderColor: "#374151" },
      timeScale: { borderColor: "#374151", timeVisible: true, secondsVisible: false, rightOffset: 8 },
      crosshair: { mode: LC.CrosshairMode.Normal },
    });
    this.series = this.chart.addSeries(LC.CandlestickSeries, {
      upColor: COLORS.up, downColor: COLORS.down, borderVisible: false,
      wickUpColor: COLORS.up, wickDownColor: COLORS.down,
    });
    this.markersPlugin = LC.createSeriesMarkers(this.series, []);
    this.times = []; // candle open times, ascending (for snapping markers to bars)
    this.lastBar = null;
    this.decisions = new Map(); // id -> {id, t, action, outcome, status, price, quantity}
    this.fills = new Map(); // key -> {t, side, price, quantity, trigger} (the broker's fills)
    this.priceLines = [];
    this.selected = null;
    this.painted = false;
    this.markersPainted = false; // the first markers drawn (what the first-paint bench waits for)
    this.markerCount = 0;
    this.chart.subscribeClick((param) => this.onClick(param));
  }

  // ---- candles ---------------------------------------------------------------------------

  /** The whole series at once (the first paint, or a reload after a gap); the first shows the
   * latest 200 bars, a reload keeps what the user scrolled to. */
  setCandles(items) {
    const bars = items.map(toBar);
    this.series.setData(bars);
    this.times = bars.map((b) => b.time);
    this.lastBar = bars.length ? bars[bars.length - 1] : null;
    if (bars.length && !this.painted) {
      this.chart.timeScale().setVisibleLogicalRange({ from: bars.length - 200, to: bars.length + 8 });
    }
    this.renderMarkers();
    this.notePaint();
  }

  /** The latest bars; false when they do not join the series (a gap: reload it whole) or the
   * series has grown past MAX_BARS (reload the latest MAX_BARS). */
  mergeCandles(items) {
    if (!items.length) return true;
    if (this.times.length + items.length > MAX_BARS) return false;
    const bars = items.map(toBar);
    if (this.lastBar && bars[0].time > this.lastBar.time) {
      const step = this.times.length > 1 ? this.times[1] - this.times[0] : 3600;
      if (bars[0].time - this.lastBar.time > step) return false; // bars missing in between
    }
    for (const bar of bars) {
      if (this.lastBar && bar.time < this.lastBar.time) continue;
      this.series.update(bar);
      if (!this.lastBar || bar.time > this.lastBar.time) this.times.push(bar.time);
      this.lastBar = bar;
    }
    this.renderMarkers();
    return true;
  }

  notePaint() {
    if (this.painted || !this.times.length) return;
    this.painted = true;
    // the chart draws on the next animation frame; this callback runs after its own
    requestAnimationFrame(() => this.hooks.onFirstPaint(performance.now()));
  }

  // ---- markers ---------------------------------------------------------------------------

  /** All the markers at once: GET /v1/decisions/markers' {items, fills}. */
  setMarkers(page) {
    this.decisions = new Map(page.items.map((item) => [item.id, item]));
    this.fills = new Map((page.fills || []).map((fill) => [fillKey(fill), fill]));
    this.cap();
    this.renderMarkers();
    if (!this.markersPainted && this.decisions.size) {
      this.markersPainted = true;
      requestAnimationFrame(() => this.hooks.onMarkersPaint?.(performance.now()));
    }
  }

  /** The latest markers, replacing the ones with the same id (fills: the same fill). */
  mergeMarkers(page) {
    for (const item of page.items) this.decisions.set(item.id, item);
    for (const fill of page.fills || []) this.fills.set(fillKey(fill), fill);
    this.cap();
    this.renderMarkers();
  }

  /** Keep the newest MAX_DECISIONS decisions and MAX_FILLS fills. */
  cap() {
    if (this.decisions.size > MAX_DECISIONS) {
      const keep = [...this.decisions.values()].sort((a, b) => a.t - b.t).slice(-MAX_DECISIONS);
      this.decisions = new Map(keep.map((item) => [item.id, item]));
    }
    if (this.fills.size > MAX_FILLS) {
      const keep = [...this.fills.entries()].sort((a, b) => a[1].t - b[1].t).slice(-MAX_FILLS);
      this.fills = new Map(keep);
    }
  }

  /** A fill heard on the stream (a Fill, with `trigger` for the broker's exits). */
  addFill(fill) {
    const mark = {
      t: Math.floor(Date.parse(fill.timestamp) / 1000), side: fill.side, price: String(fill.price),
      quantity: String(fill.quantity), trigger: fill.trigger || "desk",
    };
    this.fills.set(fillKey(mark), mark);
    this.cap();
    this.renderMarkers();
  }

  /** A decision heard on the stream before its report is stored: drawn at once as "deciding"
   * (no outcome), replaced by its stored marker when the markers are fetched again (and
   * dropped by a full reload if it was never stored). */
  addProvisional(decision) {
    if (this.decisions.has(decision.id) && this.decisions.get(decision.id).outcome) return;
    this.decisions.set(decision.id, {
      id: decision.id, t: Math.floor(Date.parse(decision.decided_at) / 1000),
      decided_at: decision.decided_at, symbol: decision.symbol, action: decision.action,
      status: null, outcome: decision.action === "HOLD" ? "hold" : null,
      quantity: decision.quantity, price: decision.price, confidence: decision.confidence,
    });
    this.cap();
    this.renderMarkers();
  }

  has(id) {
    return this.decisions.has(id);
  }

  /** Whether a marker for decision `id` is on the chart (it has a bar to sit on). */
  drawnMarker(id) {
    return Boolean(this.drawn && this.drawn.has(id));
  }

  /** How decision `id` is drawn now ({shape, color, text, position}), or null. */
  markerOf(id) {
    const marker = this.drawn && this.drawn.get(id);
    return marker ? { shape: marker.shape, color: marker.color, text: marker.text ?? null, position: marker.position } : null;
  }

  /** The decisions, newest first (for the selector). */
  recent(limit) {
    return [...this.decisions.values()].sort((a, b) => b.t - a.t).slice(0, limit);
  }

  select(id) {
    this.selected = id;
    this.renderMarkers();
  }

  /** The open time of the bar a decision at `t` saw last (the latest bar that opened before
   * it; a decision at 12:00 decides on the 11:00 bar that just closed); null if none. */
  snap(t) {
    const times = this.times;
    let lo = 0;
    let hi = times.length - 1;
    let found = null;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (times[mid] < t) { found = times[mid]; lo = mid + 1; } else hi = mid - 1;
    }
    return found;
  }

  renderMarkers() {
    if (!this.times.length) return;
    const markers = [];
    for (const item of this.decisions.values()) {
      const time = this.snap(item.t);
      if (time === null) continue;
      markers.push(decisionMarker(item, time, item.id === this.selected));
    }
    for (const [key, fill] of this.fills) {
      const time = this.snap(fill.t);
      const price = num(fill.price);
      if (time === null || !Number.isFinite(price)) continue;
      const exit = fill.trigger && fill.trigger !== "desk";
      markers.push({
        time, id: `fill:${key}`, position: "atPriceMiddle", price, shape: "circle",
        color: exit ? COLORS.exit : COLORS.fill, size: 0.7,
        text: exit ? fill.trigger.replace("_", " ") : undefined,
      });
    }
    markers.sort((a, b) => a.time - b.time);
    this.markersPlugin.setMarkers(markers);
    this.markerCount = markers.length;
    this.drawn = new Map(markers.map((m) => [m.id, m]));
  }

  onClick(param) {
    let id = typeof param.hoveredObjectId === "string" ? param.hoveredObjectId : null;
    if (id && id.startsWith("fill:")) id = null; // a fill: the decision on its bar, if any
    if (!id && param.time !== undefined) {
      // a click on a bar selects the decision drawn on it, if there is one
      for (const item of this.decisions.values()) {
        if (this.snap(item.t) === param.time) id = item.id;
      }
    }
    if (id && this.decisions.has(id)) this.hooks.onSelect(id);
  }

  // ---- the open position -----------------------------------------------------------------

  setPosition(position) {
    for (const line of this.priceLines) this.series.removePriceLine(line);
    this.priceLines = [];
    if (!position) return;
    const dashed = this.LC.LineStyle.Dashed;
    const add = (price, color, title, lineStyle = dashed) => {
      const value = num(price);
      if (!Number.isFinite(value)) return;
      this.priceLines.push(this.series.createPriceLine({
        price: value, color, title, lineStyle, lineWidth: 1, axisLabelVisible: true,
      }));
    };
    add(position.avg_price, COLORS.entry, "entry", this.LC.LineStyle.Dotted);
    add(position.stop_loss, COLORS.stop, "stop loss");
    add(position.take_profit, COLORS.target, "take profit");
  }

  /** A line for screen readers and the page: what the chart shows. */
  describe(symbol, timeframe) {
    const counts = { BUY: 0, SELL: 0, HOLD: 0 };
    for (const item of this.decisions.values()) counts[item.action] = (counts[item.action] || 0) + 1;
    const last = this.lastBar ? `last close ${fmtNum(this.lastBar.close)} at ${fmtTime(this.lastBar.time)}` : "no bars yet";
    return `${symbol} ${timeframe}: ${this.times.length.toLocaleString("en-US")} candles, ${last}; `
      + `${plural(this.decisions.size, "decision")} (${counts.BUY} buy, ${counts.SELL} sell, ${counts.HOLD} hold).`;
  }
}

function fillKey(fill) {
  return `${fill.t}|${fill.side}|${fill.price}|${fill.quantity}`;
}

function toBar(c) {
  return { time: c.t, open: Number(c.o), high: Number(c.h), low: Number(c.l), close: Number(c.c) };
}

/** The legend under the chart: every marker kind in words. */
export function legend() {
  const item = (color, shape, text) => el("li", {},
    el("span", { class: `swatch swatch-${shape}`, style: `--swatch:${color}`, "aria-hidden": "true" }), text);
  return [
    item(COLORS.buy, "up", "buy (filled)"),
    item(COLORS.sell, "down", "sell (filled)"),
    item(COLORS.hold, "dot", "hold"),
    item(COLORS.rejected, "square", "rejected by the risk gate"),
    item(COLORS.waiting, "dot", "waiting for approval"),
    item(COLORS.deciding, "dot", "deciding (the tick is still running)"),
    item(COLORS.fill, "dot", "fill (at its price)"),
    item(COLORS.exit, "dot", "exit fill (stop loss, take profit, time stop)"),
    item(COLORS.selected, "dot", "selected decision"),
  ];
}

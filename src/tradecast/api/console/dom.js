/* Small DOM and formatting helpers shared by the console's views.
 *
 * Everything the desk says (agent notes, persona lines, chat answers, reasons) is written with
 * textContent, never innerHTML: model output is untrusted text and must not become markup. */

/** An element: `attrs` may hold `text`, `class`, `dataset` (an object) and any attribute;
 * `children` are nodes or strings (written as text). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "text") node.textContent = String(value);
    else if (name === "class") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export function byId(id) {
  return document.getElementById(id);
}

/** A decimal string (or number) as a number; NaN when it is not one. */
export function num(value) {
  if (value === null || value === undefined || value === "") return Number.NaN;
  return Number(value);
}

export function fmtNum(value, digits = 2) {
  const n = num(value);
  if (!Number.isFinite(n)) return "–";
  return n.toLocaleString("en-US", { maximumFractionDigits: digits });
}

/** A signed amount: "+12.30" / "-4.00". */
export function fmtSigned(value, digits = 2) {
  const n = num(value);
  if (!Number.isFinite(n)) return "–";
  const text = Math.abs(n).toLocaleString("en-US", {
    minimumFractionDigits: digits, maximumFractionDigits: digits,
  });
  return `${n < 0 ? "-" : "+"}${text}`;
}

/** "1 tick", "3 ticks". */
export function plural(count, word) {
  return `${count.toLocaleString("en-US")} ${word}${count === 1 ? "" : "s"}`;
}

/** A fraction (0.125) as a percentage ("12.5%"). */
export function fmtPct(value, digits = 1) {
  const n = num(value);
  if (!Number.isFinite(n)) return "–";
  return `${(n * 100).toFixed(digits)}%`;
}

/** An ISO 8601 instant or epoch seconds, in UTC: "2021-06-01 12:00 UTC". */
export function fmtTime(value) {
  if (value === null || value === undefined || value === "") return "–";
  const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  return `${date.toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

/** Epoch seconds of an ISO 8601 instant. */
export function epochS(iso) {
  return Math.floor(Date.parse(iso) / 1000);
}

/** Fill `tbody` with one row per item (at most the last `limit` items, so a long history
 * never means thousands of DOM rows); `columns` are [header, (item) => text or node]. An
 * empty list shows one row saying so. */
export function fillTable(tbody, items, columns, { limit = 100, empty = "nothing yet" } = {}) {
  const rows = document.createDocumentFragment();
  const shown = items.length > limit ? items.slice(0, limit) : items;
  for (const item of shown) {
    const tr = document.createElement("tr");
    for (const [, cell] of columns) {
      const td = document.createElement("td");
      const value = cell(item);
      td.append(value instanceof Node ? value : String(value ?? "–"));
      tr.append(td);
    }
    rows.append(tr);
  }
  if (!shown.length) {
    rows.append(el("tr", { class: "empty" }, el("td", { colspan: columns.length, text: empty })));
  }
  tbody.replaceChildren(rows);
}

/** The header row of a table built by fillTable. */
export function tableHead(thead, columns) {
  thead.replaceChildren(el("tr", {}, columns.map(([name]) => el("th", { scope: "col", text: name }))));
}

/** Call `fn` once after `ms` of quiet, however often it is asked for meanwhile, but no later
 * than `maxWait` ms after the first ask: a steady stream of asks cannot put it off for ever. */
export function debounce(fn, ms, { maxWait = Infinity } = {}) {
  let timer = null;
  let first = null; // when the first ask of the waiting call came
  return (...args) => {
    const now = performance.now();
    if (first === null) first = now;
    clearTimeout(timer);
    const wait = Math.max(0, Math.min(ms, first + maxWait - now));
    timer = setTimeout(() => {
      timer = null;
      first = null;
      fn(...args);
    }, wait);
  };
}

/** A badge for an action or outcome (the word is always written: colour is never the only
 * signal). */
export function badge(text, kind = String(text).toLowerCase()) {
  return el("span", { class: `badge badge-${kind}`, text });
}

/* The control view (operators and admins; the server enforces the roles, the page only hides
 * what a role cannot do): start / stop / tick, the approvals queue with each order's
 * explanation beside it, the risk limits (an admin edits them; a change that loosens a limit
 * more than 2x comes back 409 confirmation_required and is applied only once confirmed in a
 * dialog, with PUT ?confirm=TOKEN), the kill switch (admin) and the control journal.
 *
 * Each part (approvals, limits, journal) applies only the newest answer it asked for (see
 * Latest in api.js), and what the page changed itself drops the answers still in flight. The
 * limits are reloaded whenever the desk says its status changed, but a field the user is
 * editing keeps what they typed; the kill switch sends the opposite of what it shows. */

import { api, ApiError, Latest } from "./api.js";
import { byId, el, fillTable, fmtNum, fmtTime, tableHead } from "./dom.js";
import { explanationCard } from "./explain.js";

const LIMIT_LABELS = {
  max_position_pct: ["Max position", "fraction of equity, e.g. 0.10 = 10%"],
  max_order_notional: ["Max order notional", "in the quote currency"],
  max_open_positions: ["Max open positions", "count"],
  daily_loss_limit_pct: ["Daily loss limit", "fraction of the day's starting equity"],
  max_drawdown_pct: ["Max drawdown", "fraction of peak equity"],
  cooldown_minutes: ["Cooldown after a stop-out", "minutes"],
};
const JOURNAL_COLUMNS = [
  ["#", (j) => String(j.seq)],
  ["when", (j) => fmtTime(j.at)],
  ["who", (j) => j.actor],
  ["action", (j) => j.action],
  ["detail", (j) => Object.entries(j.detail || {}).map(([k, v]) => `${k}=${v}`).join(" ")],
  ["outcome", (j) => j.outcome],
];

/** The token of a held limit change: the X-Confirm-Token header, else the error message. */
export function confirmToken(error) {
  const header = error.headers && error.headers.get && error.headers.get("X-Confirm-Token");
  if (header) return header;
  const match = /confirm[= ]([0-9a-f]{8})/.exec(error.message || "");
  return match ? match[1] : null;
}

export class ControlView {
  /** @param {{state: object, isAdmin: () => boolean, onChanged: (what: string) => void}} opts */
  constructor({ state, isAdmin, onChanged }) {
    this.state = state;
    this.isAdmin = isAdmin;
    this.onChanged = onChanged;
    this.limits = null;
    this.pendingChange = null;
    this.latest = { approvals: new Latest(), limits: new Latest(), journal: new Latest() };
    tableHead(byId("journal-table").tHead, JOURNAL_COLUMNS);
    for (const action of ["start", "stop", "tick"]) {
      byId(`desk-${action}`).addEventListener("click", () => this.deskAction(action));
    }
    byId("limits-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.saveLimits();
    });
    byId("kill-switch").addEventListener("click", () => this.toggleKillSwitch());
    byId("confirm-apply").addEventListener("click", () => this.confirmChange());
    byId("confirm-cancel").addEventListener("click", () => this.cancelChange());
    byId("confirm-dialog").addEventListener("cancel", () => this.cancelChange());
  }

  /** Load one part: "approvals", "limits" or "journal". */
  load(part) {
    if (part === "approvals") return this.loadApprovals();
    if (part === "limits") return this.loadLimits();
    if (part === "journal") return this.loadJournal();
    throw new Error(`no such part: ${part}`);
  }

  async loadApprovals() {
    const ticket = this.latest.approvals.ticket();
    const approvals = await api("/v1/approvals");
    // each order beside its explanation (the full report when it is stored)
    const reports = await Promise.all(approvals.items.map((item) => api(`/v1/decisions/${encodeURIComponent(item.decision_id)}`)
      .catch(() => ({ id: item.decision_id, decision: item.decision, status: "awaiting_approval" }))));
    if (ticket.apply()) this.showApprovals(approvals.items, reports);
  }

  async loadLimits() {
    const ticket = this.latest.limits.ticket();
    const limits = await api("/v1/risk/limits");
    if (ticket.apply()) this.showLimits(limits);
  }

  async loadJournal() {
    const ticket = this.latest.journal.ticket();
    const journal = await api("/v1/desk/journal?limit=50");
    if (ticket.apply()) this.showJournal(journal.items);
  }

  /** The limits as a desk `status` event carried them (after a change): newer than any
   * answer still in flight. */
  limitsChanged(limits) {
    this.latest.limits.bump();
    this.showLimits(limits);
  }

  say(text, state = "info", where = "control-message") {
    const node = byId(where);
    node.textContent = text;
    node.dataset.state = state;
  }

  showStatus(status) {
    byId("control-state").textContent = `${status.state}${status.ticking ? " (ticking now)" : ""}`;
    byId("control-next").textContent = status.next_tick_at ? fmtTime(status.next_tick_at) : "–";
    byId("control-ticks").textContent = String(status.ticks);
  }

  async deskAction(action) {
    const button = byId(`desk-${action}`);
    button.disabled = true;
    try {
      if (action === "tick") {
        await api("/v1/desk/tick?wait=false", { method: "POST" });
        this.say("Tick scheduled: its decision appears when the desk has decided.", "ok");
      } else {
        const status = await api(`/v1/desk/${action}`, { method: "POST" });
        this.showStatus(status);
        this.say(action === "start" ? "The desk is ticking." : "The desk is stopped.", "ok");
      }
      this.onChanged("journal");
    } catch (error) {
      this.say(`${action} refused: ${error.message}`, "error");
    } finally {
      button.disabled = false;
    }
  }

  // ---- approvals -------------------------------------------------------------------------

  /** The list, rebuilt; the focus stays on the same button of the same order (or, if that
   * order is gone, on the list), so a keyboard user is not thrown to the top of the page. */
  showApprovals(items, reports) {
    this.state.approvals = items.map((item) => item.decision_id);
    const list = byId("approvals");
    const focused = list.contains(document.activeElement) ? document.activeElement : null;
    const was = focused && focused.dataset.act
      ? { id: focused.closest("li").dataset.decisionId, act: focused.dataset.act } : null;
    list.dataset.count = String(items.length);
    if (!items.length) {
      list.replaceChildren(el("li", { class: "muted", text: "No order waits for approval." }));
    } else {
      list.replaceChildren(...items.map((item, i) => this.approvalItem(item, reports[i])));
    }
    if (focused) {
      const again = was && [...list.querySelectorAll("li.approval")]
        .find((li) => li.dataset.decisionId === was.id);
      const target = again && again.querySelector(`button[data-act="${was.act}"]`);
      if (target && !target.disabled) target.focus();
      else list.focus();
    }
  }

  approvalItem(item, report) {
    const intent = (item.request && item.request.intent) || null;
    const what = intent
      ? `${intent.side.toUpperCase()} ${fmtNum(intent.quantity, 6)} ${intent.symbol}`
      : `${item.decision ? item.decision.action : "order"} (decision ${item.decision_id})`;
    const reasons = (item.request && item.request.reasons) || [];
    const approve = el("button", {
      type: "button", class: "primary", text: "Approve", "aria-label": `Approve ${what}`, dataset: { act: "approve" },
    });
    const reject = el("button", {
      type: "button", class: "danger", text: "Reject", "aria-label": `Reject ${what}`, dataset: { act: "reject" },
    });
    approve.addEventListener("click", () => this.decide(item.decision_id, true, [approve, reject]));
    reject.addEventListener("click", () => this.decide(item.decision_id, false, [approve, reject]));
    return el("li", { class: "approval", dataset: { decisionId: item.decision_id } },
      el("div", { class: "approval-order" },
        el("h3", { text: what }),
        intent && intent.stop_loss ? el("p", { class: "small", text: `stop loss ${fmtNum(intent.stop_loss)} · take profit ${fmtNum(intent.take_profit)}` }) : null,
        reasons.length ? el("ul", { class: "plain reasons" }, reasons.map((r) => el("li", { text: r }))) : el("p", { class: "muted small", text: "The risk gate had no remark." }),
        el("div", { class: "buttons" }, approve, reject)),
      el("div", { class: "approval-explain" }, explanationCard(report)));
  }

  async decide(decisionId, approved, buttons) {
    buttons.forEach((b) => { b.disabled = true; });
    try {
      const result = await api(`/v1/approvals/${encodeURIComponent(decisionId)}`, {
        method: "POST", body: { approved },
      });
      const fills = result.fills || [];
      const text = fills.length
        ? `Approved: filled ${fills.map((f) => `${f.side} ${fmtNum(f.quantity, 6)} @ ${fmtNum(f.price)}`).join(", ")}.`
        : approved ? `Approved; no fill (${(result.risk.reasons || []).join("; ") || result.status}).` : "Rejected: no order.";
      this.state.lastApproval = { decisionId, approved, fills: fills.length };
      this.say(text, "ok", "approvals-message");
      // answered: no list asked for before this may show it again (with live buttons)
      this.latest.approvals.bump();
      this.state.approvals = this.state.approvals.filter((id) => id !== decisionId);
      const list = byId("approvals");
      const item = [...list.querySelectorAll("li.approval")].find((li) => li.dataset.decisionId === decisionId);
      if (item) {
        if (item.contains(document.activeElement)) list.focus();
        item.remove();
      }
      list.dataset.count = String(list.querySelectorAll("li.approval").length);
      if (list.dataset.count === "0") list.replaceChildren(el("li", { class: "muted", text: "No order waits for approval." }));
    } catch (error) {
      this.say(`Not done: ${error.message}`, "error", "approvals-message");
      buttons.forEach((b) => { b.disabled = false; });
    }
    this.onChanged("approval");
  }

  // ---- risk limits -----------------------------------------------------------------------

  /** Show `limits`. The fields are built once (and again if the role changes); a field the
   * user is editing (focused, or changed from what was shown) keeps its value unless `force`
   * (after a save, or a cancelled confirmation). */
  showLimits(limits, { force = false } = {}) {
    this.limits = limits;
    const admin = this.isAdmin();
    const fields = byId("limits-fields");
    fields.disabled = !admin;
    byId("limits-save").hidden = !admin;
    byId("limits-note").textContent = admin
      ? "Changes are checked as a whole and journaled. Loosening a limit more than 2x asks for a confirmation."
      : "Only an admin may change the limits.";
    if (fields.dataset.admin !== String(admin)) {
      fields.dataset.admin = String(admin);
      fields.replaceChildren(el("legend", { text: "Risk limits" }), ...Object.entries(LIMIT_LABELS).map(([name, [label, hint]]) => {
        const id = `limit-${name}`;
        const integer = typeof limits[name] === "number";
        return el("div", { class: "field" },
          el("label", { for: id, text: label }),
          el("input", {
            id, name, type: "number", inputmode: "decimal", step: integer ? "1" : "any", min: "0",
            required: true, "aria-describedby": `${id}-hint`,
          }),
          el("span", { id: `${id}-hint`, class: "hint", text: hint }));
      }));
      force = true;
    }
    for (const name of Object.keys(LIMIT_LABELS)) {
      const input = byId(`limit-${name}`);
      const value = String(limits[name]);
      const editing = input === document.activeElement || input.value !== (input.dataset.shown ?? input.value);
      if (force || !editing) input.value = value;
      input.dataset.shown = value;
    }
    const on = Boolean(limits.kill_switch);
    const kill = byId("kill-switch");
    kill.setAttribute("aria-pressed", String(on));
    kill.textContent = on ? "Kill switch is ON: turn it off" : "Kill switch is off: turn it on";
    byId("kill-state").textContent = on ? "ON: every new order is rejected" : "off";
    byId("kill-state").dataset.state = on ? "on" : "off";
  }

  /** The fields whose value changed, typed as the API has them (decimals as strings). */
  changes() {
    const changed = {};
    for (const name of Object.keys(LIMIT_LABELS)) {
      const input = byId(`limit-${name}`);
      const old = this.limits[name];
      if (input.value.trim() === "" || Number(input.value) === Number(old)) continue;
      changed[name] = typeof old === "number" ? Number(input.value) : input.value.trim();
    }
    return changed;
  }

  async saveLimits() {
    const changes = this.changes();
    if (!Object.keys(changes).length) {
      this.say("Nothing changed.", "info", "limits-message");
      return;
    }
    const before = this.limits;
    try {
      const limits = await api("/v1/risk/limits", { method: "PUT", body: changes });
      this.latest.limits.bump();
      this.saved(changes, limits, before);
    } catch (error) {
      if (error instanceof ApiError && error.status === 409 && error.code === "confirmation_required") {
        this.askConfirmation(changes, error, before);
      } else {
        this.say(`Not saved: ${error.message}`, "error", "limits-message");
      }
    }
  }

  askConfirmation(changes, error, before) {
    this.pendingChange = { changes, token: confirmToken(error), before };
    byId("confirm-text").textContent = error.message;
    this.say("Waiting for your confirmation.", "pending", "limits-message");
    const dialog = byId("confirm-dialog");
    dialog.dataset.token = this.pendingChange.token || "";
    dialog.showModal();
    byId("confirm-cancel").focus(); // the safe answer first: Enter does not loosen a limit
  }

  async confirmChange() {
    const pending = this.pendingChange;
    byId("confirm-dialog").close();
    this.pendingChange = null;
    if (!pending || !pending.token) {
      this.say("Not saved: the server gave no confirmation token.", "error", "limits-message");
      return;
    }
    try {
      const limits = await api(`/v1/risk/limits?confirm=${encodeURIComponent(pending.token)}`, {
        method: "PUT", body: pending.changes,
      });
      this.latest.limits.bump();
      this.saved(pending.changes, limits, pending.before, true);
    } catch (error) {
      this.say(`Not saved: ${error.message}`, "error", "limits-message");
    }
  }

  cancelChange() {
    if (!this.pendingChange) return;
    this.pendingChange = null;
    const dialog = byId("confirm-dialog");
    if (dialog.open) dialog.close();
    this.say("Not applied: the change was not confirmed.", "info", "limits-message");
    if (this.limits) this.showLimits(this.limits, { force: true });
  }

  /** A change applied: `before` is what the limits were when it was asked for (a status
   * event may have brought the new ones already). */
  saved(changes, limits, before, confirmed = false) {
    const old = before || {};
    const described = Object.keys(changes).map((k) => `${k} ${old[k]} → ${limits[k]}`).join(", ");
    this.showLimits(limits, { force: true });
    this.say(`Saved${confirmed ? " (confirmed)" : ""}: ${described}.`, "saved", "limits-message");
    this.onChanged("limits");
  }

  /** Turn the kill switch to the opposite of what the button shows now (the limits are
   * reloaded on every desk status event, so what it shows is fresh). */
  async toggleKillSwitch() {
    const kill = byId("kill-switch");
    if (kill.disabled) return;
    const on = kill.getAttribute("aria-pressed") !== "true";
    kill.disabled = true;
    try {
      const limits = await api("/v1/risk/kill-switch", { method: "POST", body: { on } });
      this.latest.limits.bump();
      this.showLimits(limits);
      this.say(on ? "Kill switch on: the risk gate rejects every new order." : "Kill switch off.", "saved", "limits-message");
      this.onChanged("limits");
    } catch (error) {
      this.say(`Kill switch unchanged: ${error.message}`, "error", "limits-message");
    } finally {
      kill.disabled = false;
    }
  }

  showJournal(items) {
    fillTable(byId("journal-table").tBodies[0], items, JOURNAL_COLUMNS, { limit: 50, empty: "No control action yet." });
  }
}

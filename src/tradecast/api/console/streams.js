/* The desk's live stream (SSE) for the console: one EventSource per tab, with the session
 * cookie.
 *
 * One stream only: a browser opens at most 6 HTTP/1.1 connections per host (per profile), and
 * an EventSource holds one for as long as the tab is open, so every stream more per tab takes
 * a connection from the page's own requests (two tabs with three streams each starve every
 * fetch). The `desk` channel says all the page needs: a tick's `decision`, its order, fills,
 * P&L, risk rejection and approval, the desk's `status`, and `recorded` once the tick's report
 * is stored (the market's bar moves inside every tick, and the persona's words are in the
 * report).
 *
 * The EventSource reconnects by itself and resends Last-Event-ID, so the server replays what
 * was missed (or sends `resync` when it cannot). When the browser gives the source up (an HTTP
 * error, e.g. while the server restarts), it is opened again after a backoff with
 * `?last_event_id=` (a new EventSource cannot set the header), once `canReconnect()` says the
 * session still holds. Nothing here polls: the page refetches only when an event, a resync or
 * a reconnection says something changed. */

const CHANNEL = "desk";
const EVENTS = [
  "decision", "order", "fill", "pnl", "risk_rejection", "approval_pending", "status",
  "recorded", "resync",
];
const BACKOFF_MS = [1000, 2000, 4000, 8000, 15000];

export class Streams {
  /**
   * @param {object} hooks
   * @param {(channel: string, name: string, data: object, meta: object) => void} hooks.onEvent
   *   an event's data (the bus event's `data`) and meta {id, timestamp, thread_id}
   * @param {(state: "live"|"connecting"|"offline") => void} hooks.onState
   * @param {(channel: string) => void} hooks.onReconnect the stream came back after an error
   * @param {() => Promise<boolean>} hooks.canReconnect false: stop (signed out)
   */
  constructor({ onEvent, onState, onReconnect, canReconnect }) {
    this.hooks = { onEvent, onState, onReconnect, canReconnect };
    this.source = null;
    this.lastId = null;
    this.attempts = 0;
    this.timer = null;
    this.closed = true;
    this.lost = false; // the stream failed and has not come back yet
    this.state = null;
  }

  open() {
    this.closed = false;
    this.lost = false;
    this.connect();
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    if (this.source) this.source.close();
    this.source = null;
    this.setState("offline");
  }

  connect() {
    if (this.closed) return;
    if (this.source) this.source.close();
    const query = this.lastId ? `?last_event_id=${encodeURIComponent(this.lastId)}` : "";
    const source = new EventSource(`/v1/streams/${CHANNEL}${query}`);
    this.source = source;
    let hadError = Boolean(query) || this.lost;
    this.setState(this.lost ? "offline" : "connecting");
    for (const name of EVENTS) {
      source.addEventListener(name, (event) => this.deliver(name, event));
    }
    source.onopen = () => {
      if (this.source !== source) return;
      this.attempts = 0;
      this.lost = false;
      this.setState("live");
      if (hadError) this.hooks.onReconnect(CHANNEL);
      hadError = false;
    };
    source.onerror = () => {
      if (this.closed || this.source !== source) return;
      hadError = true;
      this.lost = true;
      this.setState("offline");
      if (source.readyState === EventSource.CLOSED) this.retry();
      // otherwise the browser is already reconnecting (with Last-Event-ID)
    };
  }

  retry() {
    const wait = BACKOFF_MS[Math.min(this.attempts, BACKOFF_MS.length - 1)];
    this.attempts += 1;
    clearTimeout(this.timer);
    this.timer = setTimeout(async () => {
      if (this.closed) return;
      let allowed = true;
      try {
        allowed = await this.hooks.canReconnect();
      } catch {
        allowed = true; // the server is still away: try the stream again after the next wait
      }
      if (!allowed || this.closed) return;
      this.connect();
    }, wait);
  }

  deliver(name, event) {
    if (event.lastEventId) this.lastId = event.lastEventId;
    let parsed;
    try {
      parsed = JSON.parse(event.data);
    } catch {
      return;
    }
    // bus events arrive whole ({channel, event, data, id, timestamp, ...}); resync is bare
    const framed = parsed && typeof parsed === "object" && "channel" in parsed && "data" in parsed;
    const meta = {
      id: event.lastEventId,
      timestamp: framed ? parsed.timestamp : null,
      thread_id: framed ? parsed.thread_id : null,
    };
    this.hooks.onEvent(CHANNEL, name, framed ? parsed.data : parsed, meta);
  }

  setState(state) {
    if (state !== this.state) {
      this.state = state;
      this.hooks.onState(state);
    }
  }
}

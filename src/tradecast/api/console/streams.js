/* The desk's live streams (SSE) for the console, over EventSource with the session cookie.
 *
 * Each channel's EventSource reconnects by itself and resends Last-Event-ID, so the server
 * replays what was missed (or sends `resync` when it cannot). When the browser gives a source
 * up (an HTTP error, e.g. while the server restarts), it is opened again after a backoff with
 * `?last_event_id=` (a new EventSource cannot set the header), once `canReconnect()` says the
 * session still holds. Nothing here polls: the page refetches only when an event, a resync or
 * a reconnection says something changed. */

const CHANNEL_EVENTS = {
  desk: [
    "decision", "order", "fill", "pnl", "risk_rejection", "approval_pending", "status",
    "recorded", "resync",
  ],
  persona: ["sentence", "emotion", "resync"],
  market: ["tick", "resync"],
};
const BACKOFF_MS = [1000, 2000, 4000, 8000, 15000];

export class Streams {
  /**
   * @param {object} hooks
   * @param {(channel: string, name: string, data: object, meta: object) => void} hooks.onEvent
   *   an event's data (the bus event's `data`) and meta {id, timestamp, thread_id}
   * @param {(state: "live"|"connecting"|"offline") => void} hooks.onState
   * @param {(channel: string) => void} hooks.onReconnect a stream came back after an error
   * @param {() => Promise<boolean>} hooks.canReconnect false: stop (signed out)
   */
  constructor({ onEvent, onState, onReconnect, canReconnect }) {
    this.hooks = { onEvent, onState, onReconnect, canReconnect };
    this.sources = {};
    this.status = {}; // channel -> "connecting" | "open" | "lost"
    this.lastIds = {};
    this.attempts = {};
    this.timers = {};
    this.closed = true;
    this.state = "connecting";
  }

  open() {
    this.closed = false;
    this.status = {};
    for (const channel of Object.keys(CHANNEL_EVENTS)) this.connect(channel);
  }

  close() {
    this.closed = true;
    for (const channel of Object.keys(this.sources)) {
      clearTimeout(this.timers[channel]);
      this.sources[channel].close();
    }
    this.sources = {};
    this.setStatus(null, null);
  }

  connect(channel) {
    if (this.closed) return;
    const old = this.sources[channel];
    if (old) old.close();
    const query = this.lastIds[channel]
      ? `?last_event_id=${encodeURIComponent(this.lastIds[channel])}` : "";
    const source = new EventSource(`/v1/streams/${channel}${query}`);
    this.sources[channel] = source;
    let hadError = Boolean(query) || this.status[channel] === "lost";
    this.setStatus(channel, this.status[channel] === "lost" ? "lost" : "connecting");
    for (const name of CHANNEL_EVENTS[channel]) {
      source.addEventListener(name, (event) => this.deliver(channel, name, event));
    }
    source.onopen = () => {
      this.attempts[channel] = 0;
      this.setStatus(channel, "open");
      if (hadError) this.hooks.onReconnect(channel);
      hadError = false;
    };
    source.onerror = () => {
      if (this.closed || this.sources[channel] !== source) return;
      hadError = true;
      this.setStatus(channel, "lost");
      if (source.readyState === EventSource.CLOSED) this.retry(channel);
      // otherwise the browser is already reconnecting (with Last-Event-ID)
    };
  }

  async retry(channel) {
    const attempt = this.attempts[channel] || 0;
    this.attempts[channel] = attempt + 1;
    const wait = BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)];
    clearTimeout(this.timers[channel]);
    this.timers[channel] = setTimeout(async () => {
      if (this.closed) return;
      let allowed = true;
      try {
        allowed = await this.hooks.canReconnect();
      } catch {
        allowed = true; // the server is still away: try the stream again after the next wait
      }
      if (!allowed) return;
      this.connect(channel);
    }, wait);
  }

  deliver(channel, name, event) {
    if (event.lastEventId) this.lastIds[channel] = event.lastEventId;
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
    this.hooks.onEvent(channel, name, framed ? parsed.data : parsed, meta);
  }

  setStatus(channel, value) {
    if (channel) this.status[channel] = value;
    const values = Object.values(this.status);
    let state = "connecting";
    if (this.closed) state = "offline";
    else if (values.some((v) => v === "lost")) state = "offline";
    else if (values.length === Object.keys(CHANNEL_EVENTS).length && values.every((v) => v === "open")) {
      state = "live";
    }
    if (state !== this.state) {
      this.state = state;
      this.hooks.onState(state);
    }
  }
}

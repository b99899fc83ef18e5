/* tradecast overlay: playing the persona's spoken lines (Web Audio) and reading their timing.
 *
 * - AudioOut: one AudioContext, source -> GainNode (volume) -> AnalyserNode -> destination;
 *   fetches and decodes a line's WAV and plays it, reporting the playback time.
 * - MouthMeter: the analyser's RMS, smoothed (fast attack, slower release) and compared with
 *   thresholds relative to the line's own peak, gives closed / half / open; an open mouth is
 *   round ("o") while the word being heard has a rounded vowel (who, you, go, now); a state is
 *   held >= 60 ms so it never flickers.
 * - wordMouth: the same shapes from the word timings alone, for muted lines.
 * - timedTokens: when each word of the text is heard, from the event's `words`. */
"use strict";

window.TradecastSpeech = (() => {
  const FFT_SIZE = 1024;
  const HOLD_MS = 60;

  class AudioOut {
    constructor(volume) {
      this.volume = volume;
      this.ctx = null;
      this.onState = () => {};
    }

    /** Create the context (it may start "suspended" where autoplay needs a gesture). */
    open() {
      if (this.ctx) return this.ctx;
      const Ctx = window.AudioContext || window.webkitAudioContext;
      if (!Ctx) return null;
      this.ctx = new Ctx();
      this.gain = this.ctx.createGain();
      this.gain.gain.value = this.volume;
      this.analyser = this.ctx.createAnalyser();
      this.analyser.fftSize = FFT_SIZE;
      this.analyser.smoothingTimeConstant = 0.2;
      this.gain.connect(this.analyser);
      this.analyser.connect(this.ctx.destination);
      this.samples = new Float32Array(this.analyser.fftSize);
      this.ctx.onstatechange = () => this.onState(this.ctx.state);
      this.onState(this.ctx.state);
      return this.ctx;
    }

    get state() {
      return this.ctx ? this.ctx.state : "none";
    }

    /** Try to get the context running; true when it runs (waits at most `waitMs`). */
    async ensureRunning(waitMs = 1000) {
      const ctx = this.open();
      if (!ctx) return false;
      if (ctx.state === "running") return true;
      try {
        await Promise.race([ctx.resume(), new Promise((r) => setTimeout(r, waitMs))]);
      } catch (err) { /* still suspended */ }
      return ctx.state === "running";
    }

    /** The line's audio as an AudioBuffer (null when it cannot be had). */
    async load(url) {
      const ctx = this.open();
      if (!ctx) return null;
      const response = await fetch(url);
      if (!response.ok) throw new Error(`speech ${response.status}`);
      const data = await response.arrayBuffer();
      return await ctx.decodeAudioData(data);
    }

    /** Play `buffer` now; returns {time() (s since start), stop(), ended (Promise)}. */
    play(buffer) {
      const ctx = this.ctx;
      const source = ctx.createBufferSource();
      source.buffer = buffer;
      source.connect(this.gain);
      const startedAt = ctx.currentTime;
      let stopped = false;
      const ended = new Promise((resolve) => { source.onended = () => resolve(); });
      source.start();
      return {
        time: () => ctx.currentTime - startedAt,
        stop: () => {
          if (stopped) return;
          stopped = true;
          try { source.stop(); } catch (err) { /* already ended */ }
          source.disconnect();
        },
        ended,
      };
    }

    /** RMS of what is playing now, as if played at full volume. */
    rms() {
      if (!this.analyser) return 0;
      this.analyser.getFloatTimeDomainData(this.samples);
      let sum = 0;
      for (const v of this.samples) sum += v * v;
      const rms = Math.sqrt(sum / this.samples.length);
      return this.volume > 0.01 ? rms / this.volume : rms;
    }
  }

  class MouthMeter {
    constructor() { this.reset(); }

    reset() {
      this.level = 0;
      this.peak = 0;
      this.mouth = "closed";
      this.since = 0;
    }

    /** The mouth for an RMS reading at `nowMs` (`round`: the word heard has a rounded vowel). */
    update(rms, nowMs, round = false) {
      const k = rms > this.level ? 0.6 : 0.25; // open fast, close a little slower
      this.level += (rms - this.level) * k;
      this.peak = Math.max(this.peak * 0.997, this.level);
      const openAt = Math.max(0.09, this.peak * 0.5);
      const halfAt = Math.max(0.025, this.peak * 0.18);
      let next;
      if (this.level >= openAt) next = round ? "o" : "open";
      else if (this.level >= halfAt) next = "half";
      else next = "closed";
      // hysteresis: stay open until clearly below the threshold
      if (this.mouth === "open" && next === "half" && this.level > openAt * 0.8) next = "open";
      if (next !== this.mouth && nowMs - this.since >= HOLD_MS) {
        this.mouth = next;
        this.since = nowMs;
      }
      return this.mouth;
    }
  }

  const ROUND = /^[^aeiouy]*(oo|ou|ow|oa|o$|ue|u$|ew$)/i;

  /** Whether a word's first vowel is said with rounded lips. */
  function rounded(word) {
    return ROUND.test(String(word || "").replace(/[^a-z]/gi, ""));
  }

  /** The word heard at `t` (tokens from timedTokens), or null between words. */
  function wordAt(t, tokens) {
    for (const w of tokens) if (t >= w.start && t < w.end) return w;
    return null;
  }

  /** The mouth at `t` seconds from the word timings alone (muted or silent lines). */
  function wordMouth(t, tokens) {
    const w = wordAt(t, tokens);
    if (!w) return "closed";
    const phase = Math.abs(Math.sin(Math.PI * (t - w.start) * 6)); // ~6 syllables a second
    if (phase <= 0.55) return "half";
    return rounded(w.text) ? "o" : "open";
  }

  /** The text's words with the time (s) each is heard: the event's `words` when they match
   * the text word for word, else spread over the duration by their length. */
  function timedTokens(text, words, duration) {
    const tokens = String(text || "").split(/\s+/).filter(Boolean);
    const timed = Array.isArray(words) ? words : [];
    if (timed.length === tokens.length) {
      return tokens.map((token, i) => ({
        text: token,
        start: Number(timed[i].start_s) || 0,
        end: Number(timed[i].end_s) || 0,
      }));
    }
    const total = tokens.reduce((n, token) => n + token.length + 1, 0) || 1;
    const span = Math.max(0.1, Number(duration) || tokens.length * 0.3);
    let at = 0;
    return tokens.map((token) => {
      const start = (at / total) * span;
      at += token.length + 1;
      return { text: token, start, end: (at / total) * span };
    });
  }

  return { AudioOut, MouthMeter, wordMouth, wordAt, rounded, timedTokens };
})();

/* tradecast overlay: the persona's face.
 *
 * Two kinds of avatar share one controller and one root element (#avatar):
 * - the built-in drawn character (inline SVG below, styled and animated by avatar.css): idle
 *   breathing and random blinks, a mouth that follows the voice (closed / half / open / o) and
 *   one expression per emotion tag;
 * - the card's own sprites (PNGtuber style): an <img> swapped between idle.png, blink.png,
 *   talk.png and per-emotion variants (<emotion>.png, <emotion>_talk.png).
 *
 * The root carries the state as data- attributes (data-expression, data-mouth, data-blink,
 * data-audio, ...): the CSS draws from them and tests read them. */
"use strict";

window.TradecastAvatar = (() => {
  const EMOTIONS = ["neutral", "happy", "excited", "worried", "thinking", "sad", "smug"];
  const MOUTHS = ["closed", "half", "open", "o"];
  const BLINK_MS = 130;
  const BLINK_MIN_MS = 3000;
  const BLINK_MAX_MS = 6000;

  // Kira Candle: original art for tradecast (viewBox 400x520, a bust cut at the chest). Layers
  // back to front: hair behind, body, neck, face, cheeks, eyes, brows, mouth, hair in front,
  // the flame-shaped ahoge and the per-emotion extras (sparkles, sweat, tear, thought dots).
  const SVG = `
<svg class="kira" viewBox="0 0 400 520" xmlns="http://www.w3.org/2000/svg" aria-hidden="true" focusable="false">
  <defs>
    <linearGradient id="kira-hair" x1="0" y1="0" x2="0" y2="1">
      <stop offset="0" stop-color="#5a4fb0"/><stop offset="0.55" stop-color="#3b3278"/>
      <stop offset="1" stop-color="#2b2458"/>
    </linearGradient>
    <linearGradient id="kira-flame" x1="0" y1="1" x2="0" y2="0">
      <stop offset="0" stop-color="#ff6a2b"/><stop offset="0.6" stop-color="#ffb13b"/>
      <stop offset="1" stop-color="#fff1a8"/>
    </linearGradient>
    <radialGradient id="kira-iris" cx="0.5" cy="0.62" r="0.6">
      <stop offset="0" stop-color="#ffd36b"/><stop offset="0.55" stop-color="#f59a2a"/>
      <stop offset="1" stop-color="#b5471a"/>
    </radialGradient>
    <linearGradient id="kira-hoodie" x1="0" y1="0" x2="0" y2="1">
      <stop offset="0" stop-color="#f7f4ff"/><stop offset="1" stop-color="#d9d3f2"/>
    </linearGradient>
    <clipPath id="kira-eye-l"><ellipse cx="158" cy="206" rx="22" ry="25"/></clipPath>
    <clipPath id="kira-eye-r"><ellipse cx="242" cy="206" rx="22" ry="25"/></clipPath>
  </defs>
  <g class="k-figure">
    <path class="k-hair-back" d="M86 170 C70 250 64 330 78 420 C120 440 280 440 322 420 C336 330 330 250 314 170 C300 80 100 80 86 170 Z"/>
    <g class="k-body">
      <path class="k-hoodie" d="M14 520 C18 440 62 382 140 362 L260 362 C338 382 382 440 386 520 Z"/>
      <path class="k-hood" d="M118 372 C140 402 260 402 282 372 C262 358 138 358 118 372 Z"/>
      <path class="k-collar" d="M160 360 L200 404 L240 360"/>
      <path class="k-string" d="M184 398 L180 452 M216 398 L220 452"/>
      <circle class="k-aglet" cx="180" cy="456" r="5"/><circle class="k-aglet" cx="220" cy="456" r="5"/>
      <g class="k-emblem" transform="translate(282 440)">
        <path class="k-wick" d="M-8 -20 V18 M8 -26 V12"/>
        <rect class="k-candle-up" x="-13" y="-10" width="10" height="20" rx="2"/>
        <rect class="k-candle-down" x="3" y="-18" width="10" height="22" rx="2"/>
      </g>
    </g>
    <path class="k-neck" d="M176 286 L176 362 C188 372 212 372 224 362 L224 286 Z"/>
    <path class="k-neck-shade" d="M176 300 C190 318 210 318 224 300 L224 322 C210 334 190 334 176 322 Z"/>
    <g class="k-head">
      <g class="k-head-talk">
        <path class="k-face" d="M108 176 C106 110 294 110 292 176 C292 240 250 298 200 306 C150 298 108 240 108 176 Z"/>
        <g class="k-cheeks">
          <ellipse cx="136" cy="244" rx="19" ry="9"/><ellipse cx="264" cy="244" rx="19" ry="9"/>
          <path class="k-cheek-lines" d="M126 240 l-5 8 M136 240 l-5 8 M146 240 l-5 8 M254 240 l-5 8 M264 240 l-5 8 M274 240 l-5 8"/>
        </g>
        <g class="k-eyes">
          <g class="k-eye k-eye-l">
            <g clip-path="url(#kira-eye-l)">
              <ellipse class="k-sclera" cx="158" cy="206" rx="22" ry="25"/>
              <g class="k-iris-group">
                <ellipse class="k-iris" cx="160" cy="210" rx="15" ry="19"/>
                <ellipse class="k-pupil" cx="160" cy="212" rx="7" ry="9"/>
                <circle class="k-shine" cx="154" cy="202" r="5.5"/><circle class="k-shine-small" cx="166" cy="219" r="2.5"/>
                <path class="k-star" d="M154 194 l2 6 6 2 -6 2 -2 6 -2 -6 -6 -2 6 -2 Z"/>
              </g>
              <rect class="k-lid" x="130" y="150" width="56" height="56"/>
            </g>
            <path class="k-lash" d="M128 193 L135 199 C138 176 176 172 184 197"/>
          </g>
          <g class="k-eye k-eye-r">
            <g clip-path="url(#kira-eye-r)">
              <ellipse class="k-sclera" cx="242" cy="206" rx="22" ry="25"/>
              <g class="k-iris-group">
                <ellipse class="k-iris" cx="240" cy="210" rx="15" ry="19"/>
                <ellipse class="k-pupil" cx="240" cy="212" rx="7" ry="9"/>
                <circle class="k-shine" cx="234" cy="202" r="5.5"/><circle class="k-shine-small" cx="246" cy="219" r="2.5"/>
                <path class="k-star" d="M234 194 l2 6 6 2 -6 2 -2 6 -2 -6 -6 -2 6 -2 Z"/>
              </g>
              <rect class="k-lid" x="214" y="150" width="56" height="56"/>
            </g>
            <path class="k-lash" d="M272 193 L265 199 C262 176 224 172 216 197"/>
          </g>
          <path class="k-eye-closed" d="M136 208 C146 219 170 219 180 208 M220 208 C230 219 254 219 264 208"/>
          <path class="k-eye-happy" d="M136 212 C142 190 174 190 180 212 M220 212 C226 190 258 190 264 212"/>
        </g>
        <path class="k-nose" d="M199 236 l-3 6 h5"/>
        <g class="k-mouth">
          <path class="m m-closed m-neutral" d="M187 264 Q200 270 213 264"/>
          <path class="m m-closed m-happy" d="M182 259 Q200 278 218 259"/>
          <path class="m m-closed m-excited m-fill" d="M180 257 Q200 261 220 257 Q216 280 200 281 Q184 280 180 257 Z"/>
          <path class="m m-closed m-worried" d="M185 267 Q192 260 200 266 Q208 272 215 265"/>
          <path class="m m-closed m-thinking" d="M192 268 Q204 266 215 259"/>
          <path class="m m-closed m-sad" d="M186 271 Q200 258 214 271"/>
          <path class="m m-closed m-smug" d="M184 265 Q204 271 218 256"/>
          <g class="m m-half m-shape-neutral"><ellipse class="m-fill" cx="200" cy="266" rx="10" ry="6"/></g>
          <g class="m m-half m-shape-smile"><path class="m-fill" d="M185 260 Q200 263 215 260 Q211 275 200 275 Q189 275 185 260 Z"/></g>
          <g class="m m-half m-shape-frown"><path class="m-fill" d="M187 272 Q190 261 200 261 Q210 261 213 272 Q200 269 187 272 Z"/></g>
          <g class="m m-open m-shape-neutral"><ellipse class="m-fill" cx="200" cy="268" rx="13" ry="12"/><ellipse class="m-tongue" cx="200" cy="275" rx="8" ry="4"/></g>
          <g class="m m-open m-shape-smile"><path class="m-fill" d="M181 257 Q200 261 219 257 Q215 285 200 285 Q185 285 181 257 Z"/><ellipse class="m-tongue" cx="200" cy="278" rx="9" ry="5"/></g>
          <g class="m m-open m-shape-frown"><path class="m-fill" d="M185 279 Q187 257 200 257 Q213 257 215 279 Q200 274 185 279 Z"/><ellipse class="m-tongue" cx="200" cy="273" rx="7" ry="3"/></g>
          <g class="m m-o"><ellipse class="m-fill" cx="200" cy="268" rx="8" ry="10"/></g>
        </g>
        <g class="k-hair-front">
          <path class="k-lock k-lock-l" d="M112 128 C92 180 90 260 104 336 C112 330 118 320 120 308 C112 250 116 190 134 150 Z"/>
          <path class="k-lock k-lock-r" d="M288 128 C308 180 310 260 296 336 C288 330 282 320 280 308 C288 250 284 190 266 150 Z"/>
          <path class="k-bangs" d="M96 170 C92 96 150 58 204 58 C262 58 310 96 304 170 L290 150 L280 176 L262 138 L248 168 L236 128 L214 164 L204 124 L186 162 L170 128 L154 168 L142 138 L124 176 L112 150 Z"/>
          <path class="k-hair-strand" d="M122 200 C118 240 118 280 112 318 M278 200 C282 240 282 280 288 318 M170 80 C150 100 140 124 138 140 M236 78 C252 96 262 116 264 134"/>
          <path class="k-hair-shine" d="M150 84 C170 74 200 70 226 74"/>
        </g>
        <path class="k-brow k-brow-l" d="M135 160 C146 150 166 148 181 153"/>
        <path class="k-brow k-brow-r" d="M265 160 C254 150 234 148 219 153"/>
        <g class="k-clip" transform="translate(270 112) rotate(18)">
          <path class="k-wick" d="M-6 -14 V12 M6 -18 V8"/>
          <rect class="k-candle-up" x="-10" y="-7" width="8" height="14" rx="1.5"/>
          <rect class="k-candle-down" x="2" y="-12" width="8" height="16" rx="1.5"/>
        </g>
        <path class="k-ahoge" d="M206 62 C196 42 204 22 222 8 C218 24 232 30 230 46 C228 58 216 64 206 62 Z"/>
        <g class="k-extra k-sparkles">
          <path d="M84 104 l5 14 14 5 -14 5 -5 14 -5 -14 -14 -5 14 -5 Z"/>
          <path d="M322 86 l4 10 10 4 -10 4 -4 10 -4 -10 -10 -4 10 -4 Z"/>
          <path d="M330 170 l3 7 7 3 -7 3 -3 7 -3 -7 -7 -3 7 -3 Z"/>
        </g>
        <path class="k-extra k-sweat" d="M300 150 C292 166 290 176 300 180 C310 176 308 166 300 150 Z"/>
        <path class="k-extra k-tear" d="M150 232 C145 242 144 250 151 253 C158 250 156 242 150 232 Z"/>
        <g class="k-extra k-think">
          <circle cx="318" cy="132" r="6"/><circle cx="336" cy="112" r="8"/><circle cx="358" cy="88" r="11"/>
        </g>
      </g>
    </g>
  </g>
</svg>`;

  function randomBlinkMs() {
    return BLINK_MIN_MS + Math.random() * (BLINK_MAX_MS - BLINK_MIN_MS);
  }

  /** The avatar in `root`; `onChange(what, value)` hears of expression and mouth changes. */
  function create(root, onChange = () => {}) {
    const avatar = { expression: "neutral", mouth: "closed", talking: false, sprites: null };
    let spriteImg = null;
    let blinkTimer = null;
    let blinking = true;

    function set(name, value) {
      root.dataset[name] = value;
    }

    function drawSprite() {
      if (!spriteImg) return;
      const have = avatar.sprites;
      const e = avatar.expression;
      const talking = avatar.mouth !== "closed";
      let file;
      if (talking) {
        file = [`${e}_talk.png`, "talk.png", `${e}.png`, "idle.png"].find((f) => have.has(f));
      } else if (root.dataset.blink === "1" && have.has("blink.png")) {
        file = "blink.png";
      } else {
        file = [`${e}.png`, "idle.png"].find((f) => have.has(f));
      }
      const src = avatar.spriteUrl(file || "idle.png");
      if (spriteImg.getAttribute("src") !== src) spriteImg.setAttribute("src", src);
      root.dataset.sprite = file || "idle.png";
    }

    function setExpression(emotion) {
      const name = EMOTIONS.includes(emotion) ? emotion : "neutral";
      avatar.expression = name;
      set("expression", name);
      set("emotion", name); // the older attribute name
      root.setAttribute("aria-label", `${root.dataset.name || "persona"}: ${name}`);
      drawSprite();
      onChange("expression", name);
      return name;
    }

    function setMouth(mouth) {
      const name = MOUTHS.includes(mouth) ? mouth : "closed";
      if (name === avatar.mouth) return false;
      avatar.mouth = name;
      set("mouth", name);
      drawSprite();
      onChange("mouth", name);
      return true;
    }

    function setTalking(on) {
      avatar.talking = Boolean(on);
      set("talking", on ? "1" : "0");
    }

    function blink() {
      set("blink", "1");
      drawSprite();
      setTimeout(() => { set("blink", "0"); drawSprite(); }, BLINK_MS);
    }

    function scheduleBlink() {
      clearTimeout(blinkTimer);
      if (!blinking) return;
      blinkTimer = setTimeout(() => {
        blink();
        // now and then a double blink, as people do
        if (Math.random() < 0.15) setTimeout(blink, BLINK_MS * 2.2);
        scheduleBlink();
      }, randomBlinkMs());
    }

    /** Replace the drawn character with the card's PNGs (`files`: names in the folder). */
    function useSprites(files, spriteUrl) {
      avatar.sprites = new Set(files);
      avatar.spriteUrl = spriteUrl;
      root.replaceChildren();
      spriteImg = document.createElement("img");
      spriteImg.className = "sprite";
      spriteImg.alt = "";
      root.appendChild(spriteImg);
      root.dataset.kind = "sprites";
      for (const file of files) new Image().src = spriteUrl(file); // no flicker on first swap
      drawSprite();
    }

    /** Blink now and then (on, the default) or keep the eyes open (for still pictures). */
    function setBlinking(on) {
      blinking = Boolean(on);
      set("blink", "0");
      drawSprite();
      scheduleBlink();
    }

    function setName(name) {
      root.dataset.name = name;
      root.setAttribute("aria-label", `${name}: ${avatar.expression}`);
    }

    root.innerHTML = SVG;
    root.dataset.kind = "drawn";
    set("blink", "0");
    setMouth("closed");
    set("mouth", "closed");
    setTalking(false);
    setExpression("neutral");
    scheduleBlink();
    return { setExpression, setMouth, setTalking, useSprites, setName, blink, setBlinking, avatar };
  }

  return { create, EMOTIONS, MOUTHS };
})();

/* The console's HTTP client.
 *
 * The page authenticates with the session cookie the server set on sign-in (HttpOnly: this
 * script never sees it, and no key is ever kept in a URL or in storage). Every request goes
 * to this origin with `credentials: "same-origin"`, and every state-changing request carries
 * the session's CSRF token in `X-CSRF-Token`, which the server checks against the session:
 * another site can make the browser send the cookie, but cannot read the token.
 *
 * A change refused with 403 csrf_failed is sent once more after the page has read the
 * session again (`setCsrfFailedHandler`): the browser may have signed in elsewhere (another
 * tab, another key), which replaced the cookie and so the token and perhaps the role. */

const SAFE_METHODS = new Set(["GET", "HEAD"]);

let csrfToken = "";
let onUnauthorized = () => {};
let onCsrfFailed = async () => false;

/** An error answer: `status`, the server's `code` (csrf_failed, forbidden,
 * confirmation_required, ...), its message, and the response headers. */
export class ApiError extends Error {
  constructor(status, code, message, headers = new Headers(), body = null) {
    super(message || `HTTP ${status}`);
    this.status = status;
    this.code = code;
    this.headers = headers;
    this.body = body;
  }
}

export function setCsrfToken(token) {
  csrfToken = token || "";
}

/** Called when the server answers 401 to a signed-in page (the session ended). */
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

/** `fn()` reads the session again after a 403 csrf_failed and resolves to true when the page
 * holds a session (and its token) again: the refused change is then sent once more. */
export function setCsrfFailedHandler(fn) {
  onCsrfFailed = fn;
}

/** Whether an answer to a request is the newest of its kind. Each request takes a ticket
 * before it is sent; its answer is applied only if no answer to a later request was applied
 * already, so an answer that comes back late never puts older data over newer. */
export class Latest {
  constructor() {
    this.issued = 0;
    this.applied = 0;
  }

  ticket() {
    const n = ++this.issued;
    return {
      /** No later answer was applied yet. */
      fresh: () => n > this.applied,
      /** Mark this answer applied; false (apply nothing) when a later one was. */
      apply: () => {
        if (n <= this.applied) return false;
        this.applied = n;
        return true;
      },
    };
  }

  /** The page has newer data than any answer still in flight (it made the change itself):
   * drop them all. */
  bump() {
    this.applied = ++this.issued;
  }
}

function headersFor(method, body, extra) {
  const headers = { Accept: "application/json", ...extra };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (!SAFE_METHODS.has(method)) headers["X-CSRF-Token"] = csrfToken;
  return headers;
}

async function errorOf(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // a proxy's HTML error page: keep the status only
  }
  const detail = (body && body.error) || {};
  return new ApiError(
    response.status,
    detail.code || `http_${response.status}`,
    detail.message || response.statusText,
    response.headers,
    body,
  );
}

/** Whether a refused change may be sent again after reading the session again. */
async function renewedAfter(error, method, retried) {
  if (retried || SAFE_METHODS.has(method)) return false;
  if (error.status !== 403 || error.code !== "csrf_failed") return false;
  try {
    return Boolean(await onCsrfFailed());
  } catch {
    return false;
  }
}

/** A JSON request; resolves to the parsed body (null for 204), throws ApiError. */
export async function api(path, options = {}) {
  const { method = "GET", body, headers = {}, signal, quiet401, retried = false } = options;
  const response = await fetch(path, {
    method,
    credentials: "same-origin",
    headers: headersFor(method, body, headers),
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
  });
  if (!response.ok) {
    const error = await errorOf(response);
    if (await renewedAfter(error, method, retried)) return api(path, { ...options, retried: true });
    if (response.status === 401 && !quiet401) onUnauthorized(error);
    throw error;
  }
  if (response.status === 204) return null;
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

/** The session: {role, name, csrf_token, expires_at}, or null when not signed in. */
export async function currentSession() {
  try {
    return await api("/v1/session", { quiet401: true });
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return null;
    throw error;
  }
}

export function signIn(key) {
  return api("/v1/session", { method: "POST", body: { key }, quiet401: true });
}

export function signOut() {
  return api("/v1/session", { method: "DELETE", quiet401: true });
}

/** POST `body` and read the answer as server-sent events (POST /v1/chat streams its reply
 * over the response itself, which EventSource cannot do): `onOpen()` once the server has
 * accepted the request (from then on it may have acted on it), then `onEvent(name, data, id)`
 * for each event, in order. Resolves when the stream ends. */
export async function postStream(path, body, onEvent, { signal, onOpen = () => {}, retried = false } = {}) {
  const response = await fetch(path, {
    method: "POST",
    credentials: "same-origin",
    headers: headersFor("POST", body, { Accept: "text/event-stream" }),
    body: JSON.stringify(body),
    signal,
  });
  if (!response.ok) {
    const error = await errorOf(response);
    if (await renewedAfter(error, "POST", retried)) {
      return postStream(path, body, onEvent, { signal, onOpen, retried: true });
    }
    if (response.status === 401) onUnauthorized(error);
    throw error;
  }
  onOpen();
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      dispatchFrame(buffer.slice(0, end), onEvent);
      buffer = buffer.slice(end + 2);
    }
  }
  if (buffer.trim()) dispatchFrame(buffer, onEvent);
}

function dispatchFrame(frame, onEvent) {
  let name = "message";
  let id = null;
  const data = [];
  for (const line of frame.split("\n")) {
    if (!line || line.startsWith(":")) continue; // comments keep the connection alive
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") name = value;
    else if (field === "data") data.push(value);
    else if (field === "id") id = value;
  }
  if (!data.length) return;
  let parsed = data.join("\n");
  try {
    parsed = JSON.parse(parsed);
  } catch {
    // plain text data stays a string
  }
  onEvent(name, parsed, id);
}

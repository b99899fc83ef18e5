/* The chat side panel (operators): POST /v1/chat with the message; the answer streams back
 * over the response as SSE (token, sentence, reply, end, error) and is appended as it comes.
 * Commands ("pause", "tick", "max position 5%"...) are recognised by the server's fixed
 * grammar and checked against the role there; anything else is a question to the persona.
 *
 * Once the server has accepted a message it may act on it even if the answer never arrives
 * (the connection drops, the server stops): then the page says the outcome is unknown, not
 * that the message was not sent. */

import { postStream } from "./api.js";
import { byId, el } from "./dom.js";

const MAX_ENTRIES = 200; // messages kept in the log (the oldest go first)

export class ChatPanel {
  /** @param {object} state the page's state (chatReplies, lastChat)
   * @param {{onReply?: (reply: object) => void}} hooks `onReply` after a reply (a command may
   *   have changed the desk, its limits or its approvals) or an answer cut short */
  constructor(state, { onReply = () => {} } = {}) {
    this.state = state;
    this.onReply = onReply;
    // one conversation per page load (the server keeps the thread's history)
    this.threadId = `chat-console-${crypto.getRandomValues(new Uint32Array(2)).join("")}`;
    this.busy = false;
    byId("chat-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.send();
    });
  }

  add(who, text) {
    const body = el("p", { class: "chat-text", text });
    const item = el("div", { class: `chat-${who}` }, el("span", { class: "chat-who", text: who === "you" ? "You" : "Desk" }), body);
    const log = byId("chat-log");
    log.append(item);
    while (log.childElementCount > MAX_ENTRIES) log.firstElementChild.remove();
    item.scrollIntoView({ block: "end" });
    return { item, body };
  }

  async send() {
    const input = byId("chat-input");
    const message = input.value.trim();
    if (!message || this.busy) return;
    this.busy = true;
    byId("chat-send").disabled = true;
    input.value = "";
    this.add("you", message);
    const answer = this.add("desk", "");
    answer.item.setAttribute("aria-busy", "true");
    // what the page has seen of this answer (the tests read it): partial updates before the
    // reply, and whether the reply came
    const seen = { message, partials: 0, replied: false, command: null };
    this.state.lastChat = seen;
    let spoken = "";
    let accepted = false; // the server took the message: from here it may have acted on it
    const meta = (text, kind = "") => answer.item.append(el("p", { class: `chat-meta ${kind}`.trim(), text }));
    try {
      await postStream("/v1/chat", { message, thread_id: this.threadId }, (name, data) => {
        if (name === "token" && data && data.text) {
          spoken += data.text;
          answer.body.textContent = spoken;
          if (!seen.replied) seen.partials += 1;
        } else if (name === "sentence" && data && data.text && !spoken) {
          answer.body.textContent = data.text;
          if (!seen.replied) seen.partials += 1;
        } else if (name === "reply" && data) {
          seen.replied = true;
          seen.command = data.command || "";
          this.state.chatReplies += 1;
          answer.item.dataset.command = data.command || "";
          answer.item.dataset.applied = String(Boolean(data.applied));
          if (!answer.body.textContent) answer.body.textContent = data.message || "";
          if (data.command && data.command !== "ask") {
            const verdict = data.applied ? "done" : `not done${data.denied ? `: ${data.denied}` : ""}`;
            meta(`${data.command}: ${verdict}. ${spoken ? data.message || "" : ""}`.trim());
          }
        } else if (name === "error") {
          meta(`error: ${(data && (data.message || data.error)) || "the answer failed"}`, "error");
        }
      }, { onOpen: () => { accepted = true; } });
      if (!seen.replied) {
        meta("The answer ended early: whether the message was acted on is unknown (a command may have been applied). The control journal says.", "error");
        answer.item.classList.add("error");
      }
    } catch (error) {
      if (accepted) {
        meta(`The answer was cut off (${error.message}): whether the message was acted on is unknown (a command may have been applied). The control journal says.`, "error");
      } else if (error && error.status) {
        answer.body.textContent = `Not sent: ${error.message}`; // the server refused it
      } else {
        // no answer at all: the request may still have reached the server
        answer.body.textContent = `No answer (${error.message}): the message may or may not have reached the desk; the control journal says.`;
      }
      answer.item.classList.add("error");
    } finally {
      answer.item.removeAttribute("aria-busy");
      this.busy = false;
      byId("chat-send").disabled = false;
      this.onReply(seen);
    }
  }
}

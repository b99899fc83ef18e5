/* The chat side panel (operators): POST /v1/chat with the message; the answer streams back
 * over the response as SSE (token, sentence, reply, end, error) and is appended as it comes.
 * Commands ("pause", "tick", "max position 5%"...) are recognised by the server's fixed
 * grammar and checked against the role there; anything else is a question to the persona. */

import { postStream } from "./api.js";
import { byId, el } from "./dom.js";

export class ChatPanel {
  constructor(state) {
    this.state = state;
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
    byId("chat-log").append(item);
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
    let spoken = "";
    try {
      await postStream("/v1/chat", { message, thread_id: this.threadId }, (name, data) => {
        if (name === "token" && data && data.text) {
          spoken += data.text;
          answer.body.textContent = spoken;
        } else if (name === "sentence" && data && data.text && !spoken) {
          answer.body.textContent = data.text;
        } else if (name === "reply" && data) {
          this.state.chatReplies += 1;
          answer.item.dataset.command = data.command || "";
          answer.item.dataset.applied = String(Boolean(data.applied));
          if (!answer.body.textContent) answer.body.textContent = data.message || "";
          if (data.command && data.command !== "ask") {
            const verdict = data.applied ? "done" : `not done${data.denied ? `: ${data.denied}` : ""}`;
            answer.item.append(el("p", { class: "chat-meta", text: `${data.command}: ${verdict}. ${spoken ? data.message || "" : ""}`.trim() }));
          }
        } else if (name === "error") {
          answer.item.append(el("p", { class: "chat-meta error", text: `error: ${(data && (data.message || data.error)) || "the answer failed"}` }));
        }
      });
    } catch (error) {
      answer.body.textContent = `Not sent: ${error.message}`;
      answer.item.classList.add("error");
    } finally {
      answer.item.removeAttribute("aria-busy");
      this.busy = false;
      byId("chat-send").disabled = false;
    }
  }
}

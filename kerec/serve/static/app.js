// kerec chat page. Every piece of text from the server or the user is inserted with textContent (never
// innerHTML), so titles, facts and messages are shown as text whatever characters they hold.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const conversation = $("conversation");
  const form = $("composer");
  const message = $("message");
  const userInput = $("user");
  const sendButton = $("send");
  const status = $("status");

  function newSessionId() {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return "web-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  let session = sessionStorage.getItem("kerec-session") || newSessionId();
  sessionStorage.setItem("kerec-session", session);

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function scrollDown() {
    window.scrollTo(0, document.body.scrollHeight);
  }

  function addTurn(kind, text) {
    const turn = el("div", "turn " + kind);
    if (text !== undefined) turn.appendChild(el("p", "text", text));
    conversation.appendChild(turn);
    scrollDown();
    return turn;
  }

  function evidenceList(rec) {
    const details = el("details", "evidence");
    details.appendChild(el("summary", null, "Evidence from the knowledge graph (" + rec.evidence.length + ")"));
    const list = el("ol");
    for (const e of rec.evidence) {
      const item = el("li", "fact", e.text);
      item.value = e.n;
      if (rec.cited.includes(e.n)) item.classList.add("cited");
      item.appendChild(el("span", "fact-ids", " (" + e.kind + "; " + e.fact_ids.join(", ") + ")"));
      list.appendChild(item);
    }
    details.appendChild(list);
    return details;
  }

  function card(rec) {
    const article = el("article", "card");
    article.dataset.item = rec.item_id;
    article.appendChild(el("h3", "title", rec.rank + ". " + rec.title));
    const score = rec.score === null ? "n/a" : rec.score.toFixed(2);
    article.appendChild(el("div", "meta", "item " + rec.item_id + " · score " + score + " · " + rec.basis));
    if (rec.explanation) article.appendChild(el("p", "explanation", rec.explanation));
    if (rec.evidence.length) article.appendChild(evidenceList(rec));
    return article;
  }

  function subgraphFigure(user, recs) {
    const figure = el("figure", "subgraph");
    const img = el("img");
    const query = new URLSearchParams({ user: user, items: recs.slice(0, 5).map((r) => r.item_id).join(",") });
    img.alt = "How your recent history links to these picks in the knowledge graph";
    img.loading = "lazy";
    img.src = "/subgraph.svg?" + query.toString();
    img.addEventListener("error", () => { figure.replaceChildren(el("figcaption", null, "(no picture for this reply)")); });
    figure.appendChild(img);
    figure.appendChild(el("figcaption", null, "Your recent history (left), linking KG nodes, and the top picks (right)."));
    return figure;
  }

  function showReply(reply, user) {
    const turn = addTurn("bot", reply.text);
    if (reply.question && reply.question !== reply.text) turn.appendChild(el("p", "question", reply.question));
    if (reply.notice) {
      if (reply.notice === reply.text) turn.querySelector(".text").classList.add("notice");
      else turn.appendChild(el("p", "notice", reply.notice));
    }
    if (reply.recommendations.length) {
      const cards = el("div", "cards");
      for (const rec of reply.recommendations) cards.appendChild(card(rec));
      turn.appendChild(cards);
      if (user) turn.appendChild(subgraphFigure(user, reply.recommendations));
    }
    scrollDown();
  }

  async function send(text) {
    const user = userInput.value.trim();
    addTurn("user", text);
    sendButton.disabled = true;
    status.textContent = "thinking…";
    try {
      const body = { session: session, message: text };
      if (user) body.user = user;
      const response = await fetch("/chat", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      });
      const data = await response.json();
      if (!response.ok) {
        const reason = data && data.error ? data.error.message : "HTTP " + response.status;
        addTurn("bot error", "Sorry, that did not work: " + reason);
      } else {
        showReply(data, user);
      }
    } catch (err) {
      addTurn("bot error", "Sorry, the server could not be reached (" + err + ").");
    } finally {
      sendButton.disabled = false;
      status.textContent = "";
      message.focus();
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = message.value;
    if (!text.trim() || sendButton.disabled) return;
    message.value = "";
    send(text);
  });

  message.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  $("new").addEventListener("click", async () => {
    await fetch("/chat/" + encodeURIComponent(session), { method: "DELETE" }).catch(() => {});
    session = newSessionId();
    sessionStorage.setItem("kerec-session", session);
    conversation.replaceChildren();
    message.focus();
  });
})();

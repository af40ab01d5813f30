// chatlens dashboard: keyboard labelling and adjudication, Ctrl+Enter corrections, chat
// context on demand.
// No inline script anywhere; all message text arrives escaped by the server and is only ever
// read here as textContent.
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const readOnly = document.body.dataset.readOnly === "true";
  const codebook = JSON.parse(document.getElementById("cl-codebook").textContent || "{}");

  async function post(url, body) {
    const resp = await fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body),
    });
    let data = {};
    try { data = await resp.json(); } catch (e) { data = { error: resp.statusText }; }
    if (!resp.ok) { throw new Error(data.error || ("HTTP " + resp.status)); }
    return data;
  }

  // --- chat context on demand -------------------------------------------------------------
  document.addEventListener("click", async (ev) => {
    const btn = ev.target.closest(".ctx-btn");
    if (!btn) { return; }
    const box = btn.closest(".msg").querySelector(".ctx");
    if (!box.hidden) { box.hidden = true; return; }
    const resp = await fetch("/context/" + encodeURIComponent(btn.dataset.uid),
                             { credentials: "same-origin" });
    const doc = new DOMParser().parseFromString(await resp.text(), "text/html");
    box.replaceChildren(...doc.body.childNodes);
    box.hidden = false;
  });

  // --- annotate: number keys label, s skips, u undoes ----------------------------------------
  const ann = document.getElementById("annotate");
  const status = document.getElementById("annotate-status");
  let busy = false;
  async function act(url, body) {
    if (busy) { return; }
    busy = true;
    try {
      await post(url, body);
      window.location.reload();
    } catch (e) {
      if (status) { status.textContent = "Not saved: " + e.message; }
      busy = false;
    }
  }
  function label(value) { act("/api/label", { sample_id: ann.dataset.sample, uid: ann.dataset.uid, value: value }); }
  function skip() { act("/api/label", { sample_id: ann.dataset.sample, uid: ann.dataset.uid, skip: true }); }
  function undo() { act("/api/undo", { sample_id: ann.dataset.sample }); }
  if (ann && !readOnly) {
    document.querySelectorAll(".label-btn").forEach((b) => b.addEventListener("click", () => label(b.dataset.value)));
    const sk = document.getElementById("skip-btn"); if (sk) { sk.addEventListener("click", skip); }
    const un = document.getElementById("undo-btn"); if (un) { un.addEventListener("click", undo); }
    document.addEventListener("keydown", (ev) => {
      if (ev.ctrlKey || ev.metaKey || ev.altKey) { return; }
      const dlg = document.getElementById("correction");
      if (dlg && dlg.open) { return; }
      if (ev.target.closest("input, textarea, select")) { return; }
      if (ev.key === "u" || ev.key === "Backspace") { ev.preventDefault(); undo(); return; }
      if (!ann.dataset.uid) { return; }
      if (ev.key === "s" || ev.key === "0") { ev.preventDefault(); skip(); return; }
      const b = document.querySelector('.label-btn[data-key="' + ev.key + '"]');
      if (b) { ev.preventDefault(); label(b.dataset.value); }
    });
  }

  // --- adjudicate: number keys settle a disagreement, s moves on without deciding ------------
  const adj = document.getElementById("adjudicate");
  if (adj && !readOnly) {
    const adjStatus = document.getElementById("adjudicate-status");
    let adjBusy = false;
    async function settle(value) {
      if (adjBusy) { return; }
      adjBusy = true;
      try {
        await post("/api/adjudicate", { measure: adj.dataset.measure, uid: adj.dataset.uid, value: value });
        window.location.reload();
      } catch (e) {
        adjStatus.textContent = "Not saved: " + e.message;
        adjBusy = false;
      }
    }
    document.querySelectorAll(".adj-btn").forEach((b) => b.addEventListener("click", () => settle(b.dataset.value)));
    document.addEventListener("keydown", (ev) => {
      if (ev.ctrlKey || ev.metaKey || ev.altKey) { return; }
      const dlg = document.getElementById("correction");
      if (dlg && dlg.open) { return; }
      if (ev.target.closest("input, textarea, select")) { return; }
      const next = document.getElementById("adj-skip");
      if (ev.key === "s" && next) { ev.preventDefault(); window.location.assign(next.href); return; }
      const b = document.querySelector('.adj-btn[data-key="' + ev.key + '"]');
      if (b) { ev.preventDefault(); settle(b.dataset.value); }
    });
  }

  // --- Ctrl+Enter correction on every message view --------------------------------------------
  const dlg = document.getElementById("correction");
  if (!dlg || readOnly) { return; }
  const mSel = document.getElementById("corr-measure");
  const vSel = document.getElementById("corr-value");
  const corrStatus = document.getElementById("corr-status");
  let target = null;
  function fillValues() {
    const labels = (codebook[mSel.value] || { labels: [] }).labels;
    vSel.replaceChildren(...labels.map((l) => new Option(l, l)));
  }
  mSel.replaceChildren(...Object.keys(codebook).map((m) => new Option(m, m)));
  mSel.addEventListener("change", fillValues);
  function offsets(textEl, sel) {
    if (!sel || sel.rangeCount === 0 || sel.isCollapsed) { return null; }
    const r = sel.getRangeAt(0);
    if (!textEl.contains(r.startContainer) || !textEl.contains(r.endContainer)) { return null; }
    const pre = document.createRange();
    pre.selectNodeContents(textEl);
    pre.setEnd(r.startContainer, r.startOffset);
    const start = pre.toString().length;
    return [start, start + r.toString().length];
  }
  function open(msgEl) {
    const textEl = msgEl.querySelector(".msg-text");
    const sel = window.getSelection();
    const span = offsets(textEl, sel);
    target = { uid: msgEl.dataset.uid, span: span };
    document.getElementById("corr-quote").textContent = span ? sel.toString() : textEl.textContent;
    if (msgEl.dataset.measure && codebook[msgEl.dataset.measure]) { mSel.value = msgEl.dataset.measure; }
    fillValues();
    document.getElementById("corr-comment").value = "";
    corrStatus.textContent = "";
    dlg.showModal();
    vSel.focus();
  }
  function messageOf(node) {
    const el = node && (node.nodeType === 1 ? node : node.parentElement);
    return el ? el.closest(".msg") : null;
  }
  document.addEventListener("keydown", (ev) => {
    if (ev.key !== "Enter" || !(ev.ctrlKey || ev.metaKey)) { return; }
    if (dlg.open) { ev.preventDefault(); save(); return; }
    const sel = window.getSelection();
    const msgEl = messageOf(sel && sel.anchorNode) || document.querySelector(".msg");
    if (msgEl) { ev.preventDefault(); open(msgEl); }
  });
  document.addEventListener("click", (ev) => {
    const b = ev.target.closest(".corr-btn");
    if (!b) { return; }
    const msgEl = b.closest(".msg") || document.querySelector(".msg");
    if (msgEl) { open(msgEl); }
  });
  async function save() {
    if (!target) { return; }
    try {
      await post("/api/correction", {
        uid: target.uid, measure: mSel.value, value: vSel.value, span: target.span,
        comment: document.getElementById("corr-comment").value,
      });
      corrStatus.textContent = "Saved.";
      dlg.close();
    } catch (e) {
      corrStatus.textContent = "Not saved: " + e.message;
    }
  }
  document.getElementById("corr-save").addEventListener("click", save);
  document.getElementById("corr-cancel").addEventListener("click", () => dlg.close());
})();

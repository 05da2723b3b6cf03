// medknn serve: upload images, show each one's class with its nearest training cases.
// Every text from the server or a file name goes through textContent, never innerHTML.
"use strict";

const $ = (id) => document.getElementById(id);
const PAGE = 12;
let info = null;
let testOffset = 0;

function token() { return sessionStorage.getItem("medknn-token") || ""; }

async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  if (token()) headers.set("Authorization", "Bearer " + token());
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401) {
    $("token-box").hidden = false;
    throw new Error("This server needs a token: enter it above.");
  }
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = (await response.json()).detail; } catch (_) { /* not JSON */ }
    throw new Error(typeof detail === "string" ? detail : JSON.stringify(detail));
  }
  return response;
}

function el(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function showError(message) {
  $("error").textContent = message || "";
  $("error").hidden = !message;
}

// A click on any image opens it larger: a case at 512 px from the server, the query as sent.
async function enlarge(src, caseId, caption) {
  let url = src;
  if (caseId !== null) {
    try {
      const response = await api("/api/cases/image?size=512&id=" + encodeURIComponent(caseId));
      url = URL.createObjectURL(await response.blob());
    } catch (error) { showError(error.message); return; }
  }
  $("viewer-image").src = url;
  $("viewer-image").alt = caption;
  $("viewer-caption").textContent = caption;
  $("viewer").showModal();
}

function image(src, caseId, caption, className) {
  const img = el("img", { src, alt: caption, title: caption, class: className || "" });
  img.addEventListener("click", () => enlarge(src, caseId, caption));
  return img;
}

function neighbourList(neighbours) {
  const list = el("div", { class: "neighbours" });
  neighbours.forEach((n, rank) => {
    const figure = el("figure", { class: "neighbour", "data-label": n.label }, [
      image(n.thumbnail, n.id, `${n.id} — ${n.label}, distance ${n.distance.toFixed(4)}`),
      el("figcaption", {}, [
        el("span", { class: "neighbour-label", text: `${rank + 1}. ${n.label}` }),
        el("span", { class: "muted", text: `d = ${n.distance.toFixed(3)}` }),
      ]),
    ]);
    list.append(figure);
  });
  return list;
}

// An ensemble's evidence: one row per member, its name, its own label and its nearest cases.
function memberEvidence(members, agreement) {
  const agree = agreement === null || agreement === undefined ? ""
    : `${Math.round(100 * agreement)}% of the members agree · `;
  const rows = members.map((m) => el("section", { class: "member" }, [
    el("p", { class: "member-head" }, [
      el("span", { class: "member-name", text: m.run }),
      el("span", { class: "muted", text: ": " }),
      el("span", { class: "label member-label", text: m.label }),
      el("span", { class: "muted", text: `  p = ${m.probability.toFixed(2)}` }),
    ]),
    neighbourList(m.neighbours),
  ]));
  return el("div", { class: "members" }, [
    el("div", { class: "muted", text: `${agree}each member's nearest training cases` }),
    ...rows,
  ]);
}

function probabilityBars(probabilities) {
  const grid = el("div", { class: "probs" });
  const sorted = Object.entries(probabilities).sort((a, b) => b[1] - a[1]);
  for (const [name, p] of sorted) {
    const fill = el("span");
    fill.style.width = `${(100 * p).toFixed(1)}%`;
    grid.append(el("span", { text: name }), el("div", { class: "bar" }, [fill]),
      el("span", { text: p.toFixed(2) }));
  }
  return grid;
}

function predictionCard(p) {
  const verdict = el("p", { class: "verdict" }, [
    el("span", { class: "label predicted-label", text: p.label }),
    el("span", { class: "muted", text: `  p = ${p.probability.toFixed(2)}` }),
  ]);
  return el("article", { class: "card prediction" }, [
    el("div", { class: "query" }, [
      image(p.query_image, null, `${p.name} as the model sees it`),
      el("div", { class: "name", text: p.name }),
    ]),
    el("div", {}, p.members ? [
      verdict,
      probabilityBars(p.probabilities),
      memberEvidence(p.members, p.agreement),
    ] : [
      verdict,
      probabilityBars(p.probabilities),
      el("div", { class: "muted", text: `${p.neighbours.length} nearest training cases` }),
      neighbourList(p.neighbours),
    ]),
  ]);
}

async function predict(fileList) {
  const files = Array.from(fileList);
  if (!files.length) return;
  showError("");
  const body = new FormData();
  for (const file of files) body.append("files", file, file.name);
  $("busy").hidden = false;
  try {
    const response = await api("/api/predict?inline=true", { method: "POST", body });
    const { predictions } = await response.json();
    for (const p of predictions.reverse()) $("results").prepend(predictionCard(p));
  } catch (error) {
    showError(error.message);
  } finally {
    $("busy").hidden = true;
    $("files").value = "";
  }
}

function testCaseCard(c) {
  const verdict = el("p", { class: "verdict" }, [
    el("span", { class: c.correct ? "right" : "wrong", text: c.correct ? "✓ right " : "✗ wrong " }),
    el("span", { text: "predicted " }),
    el("span", { class: "label", text: c.label }),
    el("span", { class: "muted", text: ` (p = ${c.probability.toFixed(2)}), truth ` }),
    el("span", { class: "label", text: c.true_label }),
  ]);
  return el("article", { class: "card test-case" }, [
    el("div", { class: "query" }, [
      image(c.image, c.id, `${c.id} — truth ${c.true_label}`),
      el("div", { class: "name", text: c.id }),
    ]),
    el("div", {}, [
      verdict, c.members ? memberEvidence(c.members, c.agreement) : neighbourList(c.neighbours),
    ]),
  ]);
}

async function loadTestCases() {
  showError("");
  const wrong = $("wrong-only").checked;
  try {
    const response = await api(
      `/api/test-cases?inline=true&limit=${PAGE}&offset=${testOffset}&wrong_only=${wrong}`);
    const page = await response.json();
    $("test-cases").replaceChildren(...page.cases.map(testCaseCard));
    const last = Math.min(page.offset + page.cases.length, page.total);
    $("page-info").textContent = page.total
      ? `cases ${page.offset + 1}–${last} of ${page.total}` : "no test cases saved with this run";
    $("prev").disabled = testOffset === 0;
    $("next").disabled = last >= page.total;
  } catch (error) { showError(error.message); }
}

function route() {
  const test = location.hash === "#test";
  $("view-predict").hidden = test;
  $("view-test").hidden = !test;
  $("tab-predict").classList.toggle("active", !test);
  $("tab-test").classList.toggle("active", test);
  if (test) loadTestCases();
}

async function loadInfo() {
  try {
    info = await (await api("/api/info")).json();
    $("token-box").hidden = true;
    const model = info.ensemble
      ? `ensemble of ${info.members.length} runs (${info.members.map((m) =>
        `${m.run}: ${m.method}, ${m.backbone}, ${m.image_size} px`).join("; ")})`
      : `${info.method} · ${info.backbone} · ${info.image_size} px`;
    $("run-info").textContent = `${model} · classes: ${info.classes.join(", ")} · ` +
      `${info.training_cases} training cases`;
  } catch (error) { showError(error.message); }
}

function setup() {
  const drop = $("drop");
  $("files").addEventListener("change", (event) => predict(event.target.files));
  for (const name of ["dragenter", "dragover"]) {
    drop.addEventListener(name, (event) => { event.preventDefault(); drop.classList.add("over"); });
  }
  for (const name of ["dragleave", "drop"]) {
    drop.addEventListener(name, () => drop.classList.remove("over"));
  }
  drop.addEventListener("drop", (event) => { event.preventDefault(); predict(event.dataTransfer.files); });
  $("token-save").addEventListener("click", () => {
    sessionStorage.setItem("medknn-token", $("token").value);
    $("token").value = "";
    loadInfo();
    route();
  });
  $("viewer-close").addEventListener("click", () => $("viewer").close());
  $("viewer").addEventListener("click", (event) => { if (event.target === $("viewer")) $("viewer").close(); });
  $("wrong-only").addEventListener("change", () => { testOffset = 0; loadTestCases(); });
  $("prev").addEventListener("click", () => { testOffset = Math.max(0, testOffset - PAGE); loadTestCases(); });
  $("next").addEventListener("click", () => { testOffset += PAGE; loadTestCases(); });
  window.addEventListener("hashchange", route);
  loadInfo();
  route();
}

document.addEventListener("DOMContentLoaded", setup);

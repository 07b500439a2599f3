// longthink web view: the runs list and a run's page, built only from the service's JSON and SSE endpoints.
// No framework, no CDN. The API key (when the server needs one) is kept in localStorage and sent as a header,
// so the event stream is read with fetch (EventSource cannot send headers) and resumed with Last-Event-ID.
"use strict";

const KEY = "longthink.apiKey";
const $ = (sel, root = document) => root.querySelector(sel);
const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null) node.setAttribute(k, v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c.nodeType ? c : String(c));
  return node;
};
const short = (text, n = 80) => { const t = String(text ?? "").replace(/\s+/g, " ").trim(); return t.length > n ? t.slice(0, n - 1) + "…" : t; };
const when = (ts) => ts ? new Date(ts * 1000).toLocaleString() : "";

function headers() {
  const key = localStorage.getItem(KEY);
  return key ? { Authorization: `Bearer ${key}` } : {};
}

async function api(path) {
  const r = await fetch(path, { headers: headers() });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body?.error?.message || `${r.status} ${r.statusText}`);
  return body;
}

function keyBox() {
  const input = $("#apikey");
  if (!input) return;
  input.value = localStorage.getItem(KEY) || "";
  input.addEventListener("change", () => {
    if (input.value.trim()) localStorage.setItem(KEY, input.value.trim()); else localStorage.removeItem(KEY);
    location.reload();
  });
}

// -- the event stream -------------------------------------------------------------------------------------------
// Calls onEvents(list) for each batch; reconnects after a dropped connection with the last id seen; resolves
// with the run's resting status (the "end" event).
async function followEvents(runId, onEvents, onState = () => {}) {
  let last = 0;
  for (let attempt = 0; attempt < 1000; attempt++) {
    try {
      const h = headers();
      if (last) h["Last-Event-ID"] = String(last);
      const r = await fetch(`/v1/runs/${runId}/events`, { headers: h });
      if (!r.ok) throw new Error(`events: ${r.status}`);
      onState("live");
      const reader = r.body.getReader();
      const decoder = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += decoder.decode(value, { stream: true });
        const blocks = buf.split("\n\n");
        buf = blocks.pop();
        const batch = [];
        for (const block of blocks) {
          const f = {};
          for (const line of block.split("\n")) {
            if (!line || line.startsWith(":")) continue;
            const i = line.indexOf(":");
            f[line.slice(0, i)] = line.slice(i + 1).replace(/^ /, "");
          }
          if (f.event === "end") { if (batch.length) onEvents(batch); onState("ended"); return JSON.parse(f.data).status; }
          if (f.data === undefined) continue;
          const event = JSON.parse(f.data);
          last = Number(f.id || event.seq);
          batch.push(event);
        }
        if (batch.length) onEvents(batch);
      }
    } catch (err) {
      onState(`reconnecting (${err.message})`);
    }
    await new Promise((ok) => setTimeout(ok, Math.min(5000, 300 * (attempt + 1))));
  }
  return null;
}

// -- the runs list ----------------------------------------------------------------------------------------------
async function runsPage() {
  keyBox();
  const body = $("#runs tbody"), search = $("#search"), status = $("#status"), info = $("#info");
  let runs = [];
  const chosen = new Set();
  function picked(ev) {
    if (ev.target.checked) chosen.add(ev.target.value); else chosen.delete(ev.target.value);
    if (chosen.size === 2) location.href = `/ui/compare?${[...chosen].map((id) => `run=${id}`).join("&")}`;
  }
  const draw = () => {
    const q = search.value.trim().toLowerCase();
    body.replaceChildren(...runs.filter((r) => !q || `${r.request} ${r.domain} ${r.id}`.toLowerCase().includes(q)).map((r) =>
      el("tr", { "data-run": r.id },
        el("td", {}, el("input", { type: "checkbox", class: "pick", value: r.id, "aria-label": "compare", checked: chosen.has(r.id) ? "" : null, onchange: picked }), " ",
          el("a", { href: `/ui/runs/${r.id}` }, short(r.request, 90))),
        el("td", { class: `status ${r.status}` }, r.status),
        el("td", {}, r.domain || ""),
        el("td", {}, String(r.spend.completion_tokens)),
        el("td", { class: "muted" }, when(r.created_at)))));
  };
  const load = async () => {
    const params = new URLSearchParams({ limit: "200" });
    if (status.value) params.append("status", status.value);
    try {
      const page = await api(`/v1/runs?${params}`);
      runs = page.runs;
      info.textContent = `${page.total} runs`;
      draw();
    } catch (err) { info.textContent = err.message; }
  };
  search.addEventListener("input", draw);
  status.addEventListener("change", load);
  await load();
  setInterval(load, 3000); // live status
}

// -- a run's page -----------------------------------------------------------------------------------------------
function newRun() {
  return { plan: null, planReason: "", alternatives: [], steps: new Map(), dirty: new Set(), budget: [], cap: null, answer: null, status: "" };
}

function stepOf(run, id) {
  if (!run.steps.has(id)) {
    run.steps.set(id, { id, goal: "", strategy: "", status: "pending", candidates: new Map(), scores: new Map(), chosen: null, votes: {}, tools: [], verification: null, answer: null });
  }
  return run.steps.get(id);
}

const handlers = {
  run_started(run, e) { run.status = "running"; run.request = e.request; },
  plan_proposed(run, e) { run.alternatives.push(e); },
  plan_selected(run, e) { run.plan = e.plan; run.planReason = e.reason; },
  step_started(run, e) { const s = stepOf(run, e.step_id); s.goal = e.goal; s.strategy = e.strategy || e.step_kind || ""; s.status = "running"; },
  candidate_generated(run, e) { stepOf(run, e.step_id ?? "run").candidates.set(e.candidate.id, e.candidate); },
  candidate_scored(run, e) {
    const s = stepOf(run, e.step_id ?? "run");
    if (!s.scores.has(e.candidate_id)) s.scores.set(e.candidate_id, {});
    s.scores.get(e.candidate_id)[e.scorer] = e.value;
  },
  search_finished(run, e) { const s = stepOf(run, e.step_id ?? "run"); s.chosen = e.chosen; s.votes = e.votes || {}; s.searchAnswer = e.answer; s.reason = e.reason; },
  verification(run, e) { stepOf(run, e.step_id ?? "run").verification = e; },
  tool_called(run, e) { stepOf(run, e.step_id ?? "run").tools.push(e); },
  step_finished(run, e) { const s = stepOf(run, e.step_id); s.status = e.outcome.answer == null ? "failed" : e.outcome.verified ? "done" : e.outcome.unchecked ? "unverified" : "partial"; s.answer = e.outcome.answer; },
  budget(run, e) { run.budget.push([e.seq, e.spend.completion_tokens]); if (e.cap_tokens) run.cap = e.cap_tokens; },
  clarification_requested(run, e) { run.status = "awaiting_input"; run.questions = e.questions; },
  run_resumed(run) { run.status = "running"; run.questions = null; },
  answer(run, e) { run.answer = e.answer; run.status = e.status; },
  error(run, e) { if (!e.step_id) run.error = e.message; },
};

function layers(plan) {
  const steps = plan?.steps || [];
  const depth = new Map();
  const d = (s) => {
    if (depth.has(s.id)) return depth.get(s.id);
    depth.set(s.id, 0);
    const deps = (s.depends_on || []).map((id) => steps.find((x) => x.id === id)).filter(Boolean);
    const v = deps.length ? 1 + Math.max(...deps.map(d)) : 0;
    depth.set(s.id, v);
    return v;
  };
  const out = [];
  for (const s of steps) (out[d(s)] ||= []).push(s);
  return out;
}

function drawPlan(run, box) {
  if (!run.plan) { box.replaceChildren(el("p", { class: "muted" }, "no plan yet")); return; }
  const dag = el("div", { class: "dag", role: "list" }, layers(run.plan).map((layer) => el("div", { class: "layer" },
    layer.map((s) => {
      const status = run.steps.get(s.id)?.status || "pending";
      return el("div", { class: `node ${status}`, role: "listitem", tabindex: "0", "data-step": s.id,
        onclick: () => openStep(s.id), onkeydown: (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); openStep(s.id); } } },
        el("div", {}, el("b", {}, s.id), " ", short(s.goal, 60)),
        el("div", { class: "deps" }, status, s.depends_on?.length ? ` · after ${s.depends_on.join(", ")}` : ""));
    }))));
  const alts = run.alternatives.map((a) => `${a.plan_id}: ${a.valid ? (a.score ?? 0).toFixed(2) : "invalid"}`).join(" · ");
  box.replaceChildren(dag, el("div", { class: "alts" }, `chosen: ${run.planReason || "?"}`, alts ? ` — proposed: ${alts}` : ""));
}

function candidateChip(step, c, select) {
  const failed = c.answer == null;
  const classes = ["cand", step.chosen === c.id ? "chosen" : "", failed ? "failed" : ""].join(" ");
  const scores = step.scores.get(c.id) || {};
  const title = Object.entries(scores).map(([k, v]) => `${k}=${v == null ? "-" : Number(v).toFixed(3)}`).join(" ");
  return el("button", { class: classes, title, "data-cand": c.id, onclick: () => select(c) }, `#${c.index} ${short(c.answer ?? "no answer", 24)}`);
}

function drawCandidates(step, select) {
  const cands = [...step.candidates.values()];
  if (!cands.length) return el("p", { class: "muted" }, "no candidates");
  if (cands.some((c) => c.parent_id)) { // a tree or a beam: children under their parents
    const kids = new Map();
    for (const c of cands) { const p = c.parent_id || ""; if (!kids.has(p)) kids.set(p, []); kids.get(p).push(c); }
    const branch = (pid) => el("ul", { class: "tree" }, (kids.get(pid) || []).map((c) => el("li", {}, candidateChip(step, c, select), kids.has(c.id) ? branch(c.id) : null)));
    return branch("");
  }
  const groups = new Map(); // a pool: grouped by answer, with the votes
  for (const c of cands) { const k = c.answer ?? "(no answer)"; if (!groups.has(k)) groups.set(k, []); groups.get(k).push(c); }
  return el("div", { class: "pool" }, [...groups.entries()].sort((a, b) => b[1].length - a[1].length).map(([answer, group]) =>
    el("div", { class: "group" }, el("div", { class: "label" }, `${short(answer, 40)} · ${step.votes[answer] ?? group.length} votes`), group.map((c) => candidateChip(step, c, select)))));
}

function drawDetail(step, c, box) {
  const scores = step.scores.get(c.id) || {};
  box.replaceChildren(
    el("h2", {}, `candidate #${c.index} of step ${step.id}`, step.chosen === c.id ? " (chosen)" : ""),
    el("table", { class: "scores" }, el("tbody", {}, Object.entries(scores).map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v == null ? "-" : Number(v).toFixed(4)))))),
    el("p", {}, el("b", {}, "answer: "), c.answer ?? el("span", { class: "status failed" }, c.parse_error || "none")),
    el("p", { class: "muted" }, `${c.completion_tokens} tokens · finish ${c.finish_reason} · seed ${c.seed ?? "-"} · ${c.model}`),
    el("div", { class: "detail" }, c.text),
    ...(c.execution ? [el("p", { class: "muted" }, ran(c.execution))] : []));
}

function ran(x) { // a program's run, in words (program mode)
  const how = `ran ${x.sandboxed_by === "none" ? "unsandboxed" : "in " + x.sandboxed_by} for ${Number(x.duration_s || 0).toFixed(2)} s`;
  return x.ok ? `${how}: printed ${short(x.output || "", 80)}` : `${how}: failed: ${short(x.error || "no output", 120)}`;
}

let openStep = () => {};

function drawStep(s, detail) {
  const select = (c) => drawDetail(s, c, detail);
  return el("details", { class: "step", "data-step": s.id },
    el("summary", {}, `${s.id} `, el("span", { class: `status ${s.status}` }, s.status), ` ${short(s.goal, 70)} `,
      el("span", { class: "muted" }, `${s.strategy} · ${s.candidates.size} candidates${s.answer != null ? ` → ${short(s.answer, 30)}` : ""}`)),
    drawCandidates(s, select),
    s.verification ? el("p", { class: "muted" }, `${s.verification.passed ? "verified" : "verification failed"}: ${s.verification.reason}`) : null,
    s.tools.map((t) => el("p", { class: "muted" }, `tool ${t.tool}(${short(JSON.stringify(t.args), 60)}) → ${short(t.ok ? JSON.stringify(t.result) : t.error, 80)}`)));
}

// Only the steps whose events arrived since the last frame are drawn again (a run of 16 x 64 candidates streams
// in many batches); an open step stays open.
function drawSteps(run, box, detail) {
  for (const id of run.dirty) {
    const s = run.steps.get(id);
    const old = box.querySelector(`details[data-step="${CSS.escape(id)}"]`);
    const fresh = drawStep(s, detail);
    if (old) { fresh.open = old.open; old.replaceWith(fresh); } else box.append(fresh);
  }
  run.dirty.clear();
  openStep = (id) => { const d = box.querySelector(`details[data-step="${CSS.escape(id)}"]`); if (d) { d.open = true; d.scrollIntoView({ block: "nearest" }); d.querySelector("summary").focus(); } };
}

function drawBudget(run, svg) {
  if (!run.budget.length) return;
  const maxSeq = run.budget[run.budget.length - 1][0] || 1;
  const top = Math.max(run.cap || 0, ...run.budget.map((b) => b[1])) || 1;
  const pts = run.budget.map(([s, t]) => `${(s / maxSeq) * 100},${80 - (t / top) * 76}`).join(" ");
  svg.innerHTML = `<polyline fill="none" stroke="#2b6cb0" stroke-width="1.5" vector-effect="non-scaling-stroke" points="${pts}"/>`;
  svg.nextElementSibling.textContent = `${run.budget[run.budget.length - 1][1]} of ${run.cap ?? "∞"} tokens`;
}

async function drawArtifacts(runId, names, box) {
  for (const name of names) {
    if (box.querySelector(`[data-name="${CSS.escape(name)}"]`)) continue;
    const r = await fetch(`/v1/runs/${runId}/artifacts/${encodeURIComponent(name)}`, { headers: headers() });
    if (!r.ok) continue;
    const url = URL.createObjectURL(await r.blob());
    box.append(/\.(png|jpe?g|svg|gif)$/i.test(name) ? el("img", { class: "artifact", src: url, alt: name, "data-name": name })
      : el("p", { "data-name": name }, el("a", { href: url, download: name }, name)));
  }
}

async function runPage(runId) {
  keyBox();
  const run = newRun();
  const t0 = performance.now();
  const view = await api(`/v1/runs/${runId}`);
  $("#request").textContent = view.request;
  const status = $("#run-status"), conn = $("#conn");
  let pending = false;
  const render = () => {
    pending = false;
    status.textContent = run.status || view.status;
    status.className = `status ${run.status || view.status}`;
    const asked = (run.status || view.status) === "awaiting_input" ? (run.questions || view.pending_questions || []) : [];
    $("#answer").textContent = run.answer ?? view.answer ??
      (asked.length ? `waiting for: ${asked.map((q) => `${q.text} (default: ${q.default})`).join(" · ")}` : "");
    drawPlan(run, $("#plan"));
    drawSteps(run, $("#steps"), $("#detail"));
    drawBudget(run, $("#budget"));
    document.body.dataset.rendered = String(Math.round(performance.now() - t0));
  };
  const schedule = () => { if (!pending) { pending = true; requestAnimationFrame(render); } };
  const final = await followEvents(runId, (batch) => {
    for (const e of batch) {
      handlers[e.kind]?.(run, e);
      if (e.step_id && run.steps.has(e.step_id)) run.dirty.add(e.step_id);
    }
    schedule();
  }, (state) => { conn.textContent = state; });
  const done = await api(`/v1/runs/${runId}`);
  run.status = final || done.status;
  schedule();
  await drawArtifacts(runId, done.artifacts, $("#artifacts"));
  document.body.dataset.ended = "1";
}

// -- two runs side by side ---------------------------------------------------------------------------------------
async function comparePage(ids) {
  keyBox();
  const box = $("#compare");
  if (ids.length !== 2) { box.append(el("p", {}, "name two runs: /ui/compare?run=A&run=B (or tick two in the runs list)")); return; }
  const runs = await Promise.all(ids.map((id) => api(`/v1/runs/${id}`)));
  const rows = [
    ["status", (r) => el("span", { class: `status ${r.status}` }, r.status)],
    ["answer", (r) => r.answer ?? ""],
    ["tokens", (r) => `${r.spend.completion_tokens} generated · ${r.spend.prompt_tokens} prompt · ${r.spend.requests} model calls`],
    ["strategies", (r) => [...new Set(r.steps.map((s) => s.strategy).filter(Boolean))].join(", ")],
    ["steps", (r) => el("ol", {}, r.steps.map((s) => el("li", {}, `${s.id} `, el("span", { class: `status ${s.status}` }, s.status), ` ${short(s.answer ?? "", 40)}`)))],
    ["took", (r) => r.finished_at ? `${(r.finished_at - r.created_at).toFixed(1)} s` : "(not finished)"],
  ];
  box.append(el("table", { id: "compare-table" },
    el("thead", {}, el("tr", {}, el("th", {}, ""), runs.map((r) => el("th", {}, el("a", { href: `/ui/runs/${r.id}` }, short(r.request, 60)))))),
    el("tbody", {}, rows.map(([name, cell]) => el("tr", { "data-row": name }, el("th", {}, name), runs.map((r) => el("td", {}, cell(r))))))));
}

window.longthink = { runsPage, runPage, comparePage };

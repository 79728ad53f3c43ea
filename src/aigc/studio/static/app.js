// aigc studio page: plain JavaScript against the REST API (/api/v1), no build step.
"use strict";

const API = "/api/v1";
const state = { models: [], model: null, job: null, page: 1, pages: 1, selected: null, polling: false };
const $ = (id) => document.getElementById(id);

// ------------------------------------------------------------------------------------------- API calls

function headers(extra = {}) {
  const key = localStorage.getItem("aigc-api-key");
  return key ? { ...extra, "X-API-Key": key } : extra;
}

async function api(path, options = {}) {
  const response = await fetch(API + path, { ...options, headers: headers(options.headers) });
  const body = response.headers.get("content-type")?.includes("json") ? await response.json() : null;
  if (!response.ok) {
    const error = body?.error || { message: response.statusText };
    throw Object.assign(new Error(error.field ? `${error.field}: ${error.message}` : error.message), { fix: error.fix, status: response.status });
  }
  return body;
}

// Files are public on loopback; with a key they are fetched with it and shown from a blob URL.
async function fileUrl(url) {
  if (!localStorage.getItem("aigc-api-key")) return url;
  const response = await fetch(url, { headers: headers() });
  return URL.createObjectURL(await response.blob());
}

// --------------------------------------------------------------------------------------------- models

async function loadModels() {
  const { models } = await api("/models");
  state.models = models;
  const select = $("model");
  select.replaceChildren(...models.map((m) => new Option(`${m.name} (${m.modality})`, m.name)));
  if (!models.length) {
    $("model-info").textContent = "No models are served. Start the studio with --model NAME=RUN_DIR or install the zoo.";
    $("submit").disabled = true;
    return;
  }
  selectModel(models[0].name);
}

function selectModel(name, params = null) {
  state.model = state.models.find((m) => m.name === name);
  $("model").value = name;
  $("model-info").textContent = `${state.model.description} — ${state.model.family}, step ${state.model.step ?? "?"}`;
  renderFields(state.model.accepts, params);
}

// The form shows only what the chosen model accepts (its request class, as the API describes it).
function renderFields(accepts, params) {
  const fields = accepts.map((field) => {
    const label = document.createElement("label");
    label.textContent = field.name.replace(/_/g, " ");
    let input;
    const value = params?.[field.name] ?? field.default;
    if (field.choices) {
      input = document.createElement("select");
      input.append(new Option("every class in turn", ""), ...field.choices.map((c) => new Option(String(c), String(c))));
      input.value = Array.isArray(value) && value.length ? String(value[0]) : "";
      input.dataset.kind = "labels";
    } else if (field.enum) {
      input = document.createElement("select");
      // An optional choice (no default) starts at "the model's default": picking the first option instead
      // would send it (sampler "ddpm": 1000 steps where the model's own default is DDIM 50).
      if (field.default == null) input.append(new Option("the model's default", ""));
      input.append(...field.enum.map((c) => new Option(String(c), String(c))));
      input.value = value != null ? String(value) : "";
    } else if (field.type === "boolean") {
      input = Object.assign(document.createElement("input"), { type: "checkbox", checked: Boolean(value) });
    } else if (field.type === "integer" || field.type === "number") {
      input = Object.assign(document.createElement("input"), { type: "number", step: field.type === "integer" ? "1" : "any" });
      if (field.minimum != null) input.min = field.minimum;
      if (field.maximum != null) input.max = field.maximum;
      if (value != null) input.value = value;
    } else if (field.type === "array") {
      input = Object.assign(document.createElement("input"), { type: "text", placeholder: "comma-separated" });
      if (Array.isArray(value)) input.value = value.join(", ");
      input.dataset.kind = "array";
      input.dataset.items = field.items || "string";
    } else {
      input = document.createElement(/prompt/.test(field.name) ? "textarea" : "input");
      if (field.maxLength) input.maxLength = field.maxLength;
      if (value != null) input.value = value;
    }
    input.name = field.name;
    input.dataset.type = field.type;
    input.dataset.testid = `field-${field.name}`;
    label.append(input);
    if (field.help) label.append(Object.assign(document.createElement("small"), { textContent: field.help }));
    return label;
  });
  $("fields").replaceChildren(...fields);
}

function readParams() {
  const params = {};
  for (const input of $("fields").querySelectorAll("input, select, textarea")) {
    const type = input.dataset.type;
    if (input.dataset.kind === "labels") {
      if (input.value !== "") params[input.name] = [Number(input.value)];
    } else if (input.dataset.kind === "array") {
      const items = input.value.split(",").map((s) => s.trim()).filter(Boolean);
      const numeric = ["integer", "number"].includes(input.dataset.items);
      if (items.length) params[input.name] = numeric ? items.map(Number) : items;
    } else if (type === "boolean") {
      params[input.name] = input.checked;
    } else if (type === "integer" || type === "number") {
      if (input.value !== "") params[input.name] = Number(input.value);
    } else if (input.value !== "") {
      params[input.name] = input.value;
    }
  }
  return params;
}

// ----------------------------------------------------------------------------------------------- jobs

async function submit(event) {
  event.preventDefault();
  showError(null);
  $("submit").disabled = true;
  try {
    const job = await api("/jobs", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ model: state.model.name, params: readParams() }) });
    state.job = job;
    $("cancel").hidden = false;
    await follow(job.id);
  } catch (error) {
    showError(error);
  } finally {
    $("submit").disabled = false;
    $("cancel").hidden = true;
  }
}

// Long-poll the job: the server answers as soon as it moves (or after a second), with progress.
async function follow(jobId) {
  $("progress").hidden = false;
  let job;
  for (;;) {
    job = await api(`/jobs/${jobId}?wait=1`);
    $("progress-bar").value = job.progress;
    $("progress-text").textContent = `${job.status} ${job.message || ""}`;
    renderGallery(job);
    if (["succeeded", "failed", "cancelled"].includes(job.status)) break;
  }
  if (job.status === "failed") showError(new Error(job.error_field ? `${job.error_field}: ${job.error}` : job.error));
  loadHistory();
  return job;
}

async function cancel() {
  if (state.job) await api(`/jobs/${state.job.id}/cancel`, { method: "POST" }).catch(showError);
}

function showError(error) {
  const box = $("form-error");
  box.hidden = !error;
  box.textContent = error ? error.message + (error.fix ? ` — ${error.fix}` : "") : "";
}

// -------------------------------------------------------------------------------------------- gallery

const rendered = new Set();

function renderGallery(job) {
  const gallery = $("gallery");
  if (gallery.dataset.job !== job.id) {
    gallery.dataset.job = job.id;
    gallery.replaceChildren();
    rendered.clear();
    $("details").hidden = true;
  }
  $("results-job").textContent = `${job.model} · ${job.status} · job ${job.id.slice(0, 8)}`;
  // A streaming text job: show the text so far until its artifact arrives.
  let live = gallery.querySelector("[data-testid=stream]");
  if (job.partial_text != null && !job.artifacts.length) {
    if (!live) {
      live = Object.assign(document.createElement("pre"), { className: "stream" });
      live.dataset.testid = "stream";
      gallery.replaceChildren(live);
    }
    live.textContent = job.partial_text;
  } else if (live && job.artifacts.length) {
    live.remove();
  }
  for (const artifact of job.artifacts) {
    if (rendered.has(artifact.id)) continue;
    rendered.add(artifact.id);
    gallery.append(card(job, artifact));
  }
  if (job.status === "succeeded" && !job.artifacts.length) gallery.replaceChildren(Object.assign(document.createElement("p"), { className: "muted", textContent: "No artifacts." }));
}

function card(job, artifact) {
  const item = document.createElement("figure");
  item.className = "card";
  item.dataset.testid = "artifact";
  const caption = Object.assign(document.createElement("span"), { textContent: [artifact.seed != null && `seed ${artifact.seed}`, artifact.label != null && `label ${artifact.label}`].filter(Boolean).join(" · ") });
  if (artifact.kind === "image") {
    const img = Object.assign(document.createElement("img"), { alt: `seed ${artifact.seed}`, loading: "lazy" });
    fileUrl(artifact.url).then((url) => (img.src = url));
    item.append(img, caption);
  } else if (artifact.kind === "audio") {
    const audio = Object.assign(document.createElement("audio"), { controls: true, preload: "none" });
    fileUrl(artifact.url).then((url) => (audio.src = url));
    item.append(audio, caption);
  } else {
    const pre = document.createElement("pre");
    fetch(artifact.url, { headers: headers() }).then((r) => r.text()).then((text) => (pre.textContent = text));
    item.append(pre, caption);
  }
  item.addEventListener("click", () => showDetails(job, artifact, item));
  return item;
}

function showDetails(job, artifact, element) {
  document.querySelectorAll(".card.selected").forEach((c) => c.classList.remove("selected"));
  element.classList.add("selected");
  state.selected = { job, artifact };
  const rows = { model: artifact.model, seed: artifact.seed, label: artifact.label, size: artifact.width ? `${artifact.width}×${artifact.height}` : null, checkpoint: artifact.checkpoint_sha256, sha256: artifact.sha256, request: JSON.stringify(job.params), created: new Date(artifact.created_at).toLocaleString() };
  $("details-list").replaceChildren(...Object.entries(rows).filter(([, v]) => v != null).flatMap(([k, v]) => [Object.assign(document.createElement("dt"), { textContent: k }), Object.assign(document.createElement("dd"), { textContent: String(v) })]));
  $("download").href = artifact.url + "?download=true";
  $("details").hidden = false;
}

function reuse(job) {
  if (!state.models.some((m) => m.name === job.model)) return showError(new Error(`model ${job.model} is no longer served`));
  selectModel(job.model, job.params);
  $("job-form").scrollIntoView({ behavior: "smooth" });
}

// -------------------------------------------------------------------------------------------- history

async function loadHistory() {
  const status = $("history-status").value;
  const query = new URLSearchParams({ page: state.page, per_page: 10, ...(status && { status }) });
  let page;
  try {
    page = await api(`/jobs?${query}`);
  } catch (error) {
    $("history").replaceChildren(Object.assign(document.createElement("li"), { className: "error", textContent: error.message }));
    return;
  }
  state.pages = page.pages;
  $("page-info").textContent = `page ${page.page} of ${page.pages} · ${page.total} jobs`;
  $("prev").disabled = page.page <= 1;
  $("next").disabled = page.page >= page.pages;
  $("history").replaceChildren(...page.items.map(historyItem));
}

function historyItem(job) {
  const item = document.createElement("li");
  item.dataset.testid = "history-item";
  item.dataset.job = job.id;
  const status = Object.assign(document.createElement("span"), { className: `status ${job.status}`, textContent: job.status });
  const what = Object.assign(document.createElement("span"), { textContent: `${job.model} · ${Object.entries(job.params).filter(([, v]) => v != null).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(",") : v}`).join(" ")}` });
  const when = Object.assign(document.createElement("span"), { className: "muted", textContent: new Date(job.created_at).toLocaleTimeString() });
  const thumbs = document.createElement("span");
  thumbs.className = "thumbs";
  for (const artifact of job.artifacts.filter((a) => a.kind === "image").slice(0, 6)) {
    const img = Object.assign(document.createElement("img"), { alt: "", loading: "lazy" });
    fileUrl(artifact.url).then((url) => (img.src = url));
    thumbs.append(img);
  }
  const again = Object.assign(document.createElement("button"), { type: "button", className: "secondary", textContent: "Reuse" });
  again.addEventListener("click", (event) => { event.stopPropagation(); reuse(job); });
  item.append(status, what, when, thumbs, again);
  item.addEventListener("click", () => renderGallery(job));
  return item;
}

// ------------------------------------------------------------------------------------------- start-up

async function health() {
  try {
    const body = await (await fetch(API + "/health")).json();
    $("health").className = `dot ${body.status === "ok" ? "ok" : "bad"}`;
    $("health").title = `database ${body.database}, executor ${body.executor.executor}, queue ${body.queue_depth}`;
  } catch {
    $("health").className = "dot bad";
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("api-key").value = localStorage.getItem("aigc-api-key") || "";
  $("api-key").addEventListener("change", (e) => { localStorage.setItem("aigc-api-key", e.target.value.trim()); loadModels().catch(showError); loadHistory(); });
  $("model").addEventListener("change", (e) => selectModel(e.target.value));
  $("job-form").addEventListener("submit", submit);
  $("cancel").addEventListener("click", cancel);
  $("reuse").addEventListener("click", () => state.selected && reuse(state.selected.job));
  $("history-status").addEventListener("change", () => { state.page = 1; loadHistory(); });
  $("history-refresh").addEventListener("click", loadHistory);
  $("prev").addEventListener("click", () => { state.page = Math.max(1, state.page - 1); loadHistory(); });
  $("next").addEventListener("click", () => { state.page = Math.min(state.pages, state.page + 1); loadHistory(); });
  health();
  setInterval(health, 15000);
  loadModels().catch(showError);
  loadHistory();
});

// aigc studio page: plain JavaScript against the REST API (/api/v1), no build step.
"use strict";

const API = "/api/v1";
const state = { models: [], model: null, job: null, shown: null, page: 1, pages: 1, selected: null, lightbox: null, polling: false };
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

// Save a file: fetched with the key (a plain link would get 401 when keys are required), then handed
// to the browser as a download under the server's file name.
async function download(url) {
  const response = await fetch(url, { headers: headers() });
  if (!response.ok) {
    const body = await response.json().catch(() => null);
    throw new Error(body?.error?.message || response.statusText);
  }
  const name = /filename="([^"]+)"/.exec(response.headers.get("content-disposition") || "")?.[1] || "aigc-download";
  const link = Object.assign(document.createElement("a"), { href: URL.createObjectURL(await response.blob()), download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}

// --------------------------------------------------------------------------------------------- models

async function loadModels() {
  const { models } = await api("/models");
  showError(null); // e.g. "an API key is required", once a valid key is entered
  state.models = models;
  const select = $("model");
  select.replaceChildren(...models.map((m) => new Option(`${m.name} (${m.modality})`, m.name)));
  const filter = $("history-model");
  const chosen = filter.value;
  filter.replaceChildren(new Option("all models", ""), ...models.map((m) => new Option(m.name, m.name)));
  filter.value = chosen;
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
  // A built-in method (Gatys) has no training step to show.
  const trained = state.model.step == null ? "" : `, step ${state.model.step}`;
  $("model-info").textContent = `${state.model.description} — ${state.model.family}${trained}`;
  showCard(state.model.card);
  renderFields(state.model.accepts, params);
}

// A zoo model's card: data and licence, training budget, intended use, limitations, safety settings.
function showCard(card) {
  const box = $("model-card");
  box.hidden = !card;
  if (!card) return;
  const rows = [
    ["Data", [card.data, `Licence: ${card.license}`]],
    ["Training budget", [`${card.training.steps.toLocaleString()} steps, ${card.training.cpu_minutes} CPU-minutes on one core (preset ${card.training.preset})`]],
    ["Intended use", [card.intended_use]],
    ["Limitations", card.limitations],
    ["Safety settings", card.safety],
  ];
  $("model-card-list").replaceChildren(...rows.flatMap(([title, lines]) => {
    const term = Object.assign(document.createElement("dt"), { textContent: title });
    const detail = document.createElement("dd");
    detail.append(...lines.map((line) => Object.assign(document.createElement("p"), { textContent: line })));
    return [term, detail];
  }));
}

// The form shows only what the chosen model accepts (its request class, as the API describes it), with
// each field's real default filled in (the API reports the model's own, e.g. guidance 3, 50 steps).
const RANDOM_SEED = -1;

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
    } else if (field.format === "image") {
      input = imageInput(field, value);
    } else if (field.type === "number" && field.minimum === 0 && field.maximum === 1) {
      // A strength in [0, 1] (alpha): a slider that shows its value.
      input = Object.assign(document.createElement("input"), { type: "range", min: "0", max: "1", step: "0.05", value: String(value ?? 1) });
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
    if (field.default != null) input.dataset.default = JSON.stringify(field.default);
    if (input.type === "range") {
      const shown = Object.assign(document.createElement("output"), { textContent: input.value });
      input.addEventListener("input", () => { shown.textContent = input.value; });
      const row = Object.assign(document.createElement("span"), { className: "seed-row" });
      row.append(input, shown);
      label.append(row);
    } else if (input.type === "file") {
      label.append(input, input.thumbs);
    } else if (field.name === "seed") {
      // -1 is "a random seed" (the default): the job records the seed it used, so "reuse" repeats it.
      const row = Object.assign(document.createElement("span"), { className: "seed-row" });
      const dice = Object.assign(document.createElement("button"), { type: "button", className: "secondary dice", textContent: "🎲", title: "random seed (-1)" });
      dice.dataset.testid = "seed-random";
      dice.setAttribute("aria-label", "random seed");
      dice.addEventListener("click", () => { input.value = String(RANDOM_SEED); });
      row.append(input, dice);
      label.append(row);
    } else {
      label.append(input);
    }
    if (field.help) label.append(Object.assign(document.createElement("small"), { textContent: field.help }));
    return label;
  });
  $("fields").replaceChildren(...fields);
}

// Image fields take uploads: the chosen files are sent to POST /uploads when the job is submitted and the
// job gets their references ("upload:<sha256>"). Reused settings keep the earlier job's uploads until
// other files are chosen.
const IMAGE_TYPES = "image/png,image/jpeg,image/webp,image/gif,image/bmp";
const UPLOAD = "upload:";

function imageInput(field, value) {
  const input = Object.assign(document.createElement("input"), { type: "file", accept: IMAGE_TYPES, multiple: field.type === "array" });
  input.dataset.kind = "image";
  input.thumbs = Object.assign(document.createElement("span"), { className: "thumbs upload-thumbs" });
  input.thumbs.dataset.testid = `thumbs-${field.name}`;
  const refs = [value].flat().filter((v) => typeof v === "string" && v.startsWith(UPLOAD));
  if (refs.length) input.dataset.refs = JSON.stringify(refs);
  const show = (urls) => input.thumbs.replaceChildren(...urls.map((url) => Object.assign(document.createElement("img"), { src: url, alt: field.name })));
  Promise.all(refs.map((ref) => fileUrl(`${API}/uploads/${ref.slice(UPLOAD.length)}`))).then(show);
  input.addEventListener("change", () => {
    delete input.dataset.refs;
    show([...input.files].map((file) => URL.createObjectURL(file)));
  });
  return input;
}

async function uploadImages() {
  const params = {};
  for (const input of $("fields").querySelectorAll("input[data-kind=image]")) {
    let refs = input.dataset.refs ? JSON.parse(input.dataset.refs) : [];
    if (input.files.length) {
      refs = [];
      for (const file of input.files) {
        const form = new FormData();
        form.append(input.name, file, file.name);
        refs.push((await api("/uploads", { method: "POST", body: form })).ref);
      }
      input.dataset.refs = JSON.stringify(refs); // submitting again sends the same uploads
    }
    if (refs.length) params[input.name] = input.multiple ? refs : refs[0];
  }
  return params;
}

// Only what differs from a field's default is sent: the model then applies its own default (so a job
// records "the model's default" rather than whatever the form showed).
function readParams() {
  const params = {};
  for (const input of $("fields").querySelectorAll("input, select, textarea")) {
    const type = input.dataset.type;
    if (input.dataset.kind === "image") {
      continue; // uploadImages
    } else if (input.dataset.kind === "labels") {
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
    if (input.name in params && input.dataset.default === JSON.stringify(params[input.name])) delete params[input.name];
  }
  return params;
}

// ----------------------------------------------------------------------------------------------- jobs

async function submit(event) {
  event.preventDefault();
  showError(null);
  $("submit").disabled = true;
  try {
    const params = { ...readParams(), ...(await uploadImages()) };
    const job = await api("/jobs", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ model: state.model.name, params }) });
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
    showPreview(job);
    renderGallery(job);
    if (["succeeded", "failed", "cancelled"].includes(job.status)) break;
  }
  if (job.status === "failed") showError(new Error(job.error_field ? `${job.error_field}: ${job.error}` : job.error));
  loadHistory();
  return job;
}

// A running diffusion job's images as they form (the server keeps the latest step's estimate).
function showPreview(job) {
  const img = $("preview");
  const running = Boolean(job.preview_url) && job.status === "running";
  img.hidden = !running;
  if (!running || img.dataset.progress === String(job.progress)) return;
  img.dataset.progress = String(job.progress);
  fileUrl(`${job.preview_url}?at=${job.progress}`).then((url) => { if (!img.hidden) img.src = url; });
}

async function cancel() {
  if (state.job) await api(`/jobs/${state.job.id}/cancel`, { method: "POST" }).catch(showError);
}

// A prompt the moderation policy warned about ran; the job says why (category, evidence, score vs threshold).
function showModeration(job) {
  const note = $("moderation-note");
  const findings = job.moderation?.findings || [];
  note.hidden = !findings.length;
  note.textContent = findings.length ? "Moderation warning: " + findings.map((f) =>
    `${f.category} (${f.method}) in ${f.field}: ${JSON.stringify(f.evidence)}` + (f.method === "semantic" ? `, similarity ${f.score.toFixed(2)} ≥ ${f.threshold.toFixed(2)}` : "")).join("; ") : "";
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
    renderInputs(job);
  }
  $("results-job").textContent = `${job.model} · ${job.status} · job ${job.id.slice(0, 8)}`;
  state.shown = job;
  showModeration(job);
  $("download-all").hidden = !job.artifacts.length;
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

// The uploaded images a job was made from (content, style, the image to translate), beside its results.
function renderInputs(job) {
  const figures = Object.entries(job.params).flatMap(([name, value]) => {
    const refs = [value].flat().filter((v) => typeof v === "string" && v.startsWith(UPLOAD));
    return refs.map((ref, index) => {
      const item = Object.assign(document.createElement("figure"), { className: "card input" });
      item.dataset.testid = "input";
      const img = Object.assign(document.createElement("img"), { alt: name });
      fileUrl(`${API}/uploads/${ref.slice(UPLOAD.length)}`).then((url) => (img.src = url));
      item.append(img, Object.assign(document.createElement("span"), { textContent: refs.length > 1 ? `${name} ${index + 1}` : name }));
      return item;
    });
  });
  $("inputs").replaceChildren(...figures);
  $("inputs").hidden = !figures.length;
}

function card(job, artifact) {
  const item = document.createElement("figure");
  item.className = "card";
  item.dataset.testid = "artifact";
  const caption = Object.assign(document.createElement("span"), { textContent: [artifact.seed != null && `seed ${artifact.seed}`, artifact.label != null && `label ${artifact.label}`].filter(Boolean).join(" · ") });
  if (artifact.kind === "image") {
    const img = Object.assign(document.createElement("img"), { alt: `seed ${artifact.seed}`, loading: "lazy" });
    fileUrl(artifact.url).then((url) => (img.src = url));
    img.addEventListener("dblclick", () => openLightbox(job, artifact));
    item.append(img, caption);
  } else if (artifact.kind === "audio") {
    // Sound: its log-mel spectrogram (server-drawn, 256 x 64), the player, and a download of the WAV.
    const picture = Object.assign(document.createElement("img"), { alt: `spectrogram, seed ${artifact.seed}`, className: "spectrogram", loading: "lazy" });
    picture.dataset.testid = "spectrogram";
    fileUrl(`${API}/artifacts/${artifact.id}/spectrogram`).then((url) => (picture.src = url));
    const audio = Object.assign(document.createElement("audio"), { controls: true, preload: "metadata" });
    fileUrl(artifact.url).then((url) => (audio.src = url));
    const save = Object.assign(document.createElement("button"), { type: "button", className: "secondary", textContent: "Download WAV" });
    save.dataset.testid = "download-clip";
    save.addEventListener("click", (event) => {
      event.stopPropagation();
      download(artifact.url + "?download=true").catch(showError);
    });
    item.append(picture, audio, caption, save);
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
  $("reuse-seed").hidden = artifact.seed == null;
  $("zoom").hidden = artifact.kind !== "image";
  $("details").hidden = false;
}

// Reuse a job's settings; with an artifact, that image's own seed (image i of a job has seed + i) and
// label, so the first image of the next job is that one.
function reuse(job, artifact = null) {
  if (!state.models.some((m) => m.name === job.model)) return showError(new Error(`model ${job.model} is no longer served`));
  const params = artifact?.seed != null ? { ...job.params, seed: artifact.seed, ...(artifact.label != null && { labels: [artifact.label] }) } : job.params;
  selectModel(job.model, params);
  $("job-form").scrollIntoView({ behavior: "smooth" });
}

// ------------------------------------------------------------------------------------------- lightbox

// Small images (8x8 digits) shown large, pixel for pixel; arrows step through the job's images.
function openLightbox(job, artifact) {
  const images = job.artifacts.filter((a) => a.kind === "image");
  state.lightbox = { job, images, index: Math.max(0, images.findIndex((a) => a.id === artifact.id)) };
  showLightboxImage();
  if (!$("lightbox").open) $("lightbox").showModal();
}

function showLightboxImage() {
  const { images, index } = state.lightbox;
  const artifact = images[index];
  $("lightbox-image").alt = `seed ${artifact.seed}`;
  fileUrl(artifact.url).then((url) => ($("lightbox-image").src = url));
  $("lightbox-caption").textContent = [`${index + 1} / ${images.length}`, artifact.seed != null && `seed ${artifact.seed}`, artifact.label != null && `label ${artifact.label}`, artifact.width && `${artifact.width}×${artifact.height}`].filter(Boolean).join(" · ");
}

function stepLightbox(delta) {
  const box = state.lightbox;
  if (!box) return;
  box.index = (box.index + delta + box.images.length) % box.images.length;
  showLightboxImage();
}

// -------------------------------------------------------------------------------------------- history

async function loadHistory() {
  const status = $("history-status").value;
  const model = $("history-model").value;
  const q = $("history-q").value.trim();
  const query = new URLSearchParams({ page: state.page, per_page: 10, ...(status && { status }), ...(model && { model }), ...(q && { q }) });
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

const shortRef = (value) => (typeof value === "string" && value.startsWith(UPLOAD) ? value.slice(0, UPLOAD.length + 8) + "…" : value);

function historyItem(job) {
  const item = document.createElement("li");
  item.dataset.testid = "history-item";
  item.dataset.job = job.id;
  const status = Object.assign(document.createElement("span"), { className: `status ${job.status}`, textContent: job.status });
  const what = Object.assign(document.createElement("span"), { textContent: `${job.model} · ${Object.entries(job.params).filter(([, v]) => v != null).map(([k, v]) => `${k}=${[v].flat().map(shortRef).join(",")}`).join(" ")}` });
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
  const buttons = Object.assign(document.createElement("span"), { className: "item-actions" });
  buttons.append(again);
  if (["succeeded", "failed", "cancelled"].includes(job.status)) {
    const remove = Object.assign(document.createElement("button"), { type: "button", className: "secondary danger", textContent: "Delete" });
    remove.dataset.testid = "delete";
    remove.addEventListener("click", (event) => { event.stopPropagation(); deleteJob(job); });
    buttons.append(remove);
  }
  item.append(status, what, when, thumbs, buttons);
  item.addEventListener("click", () => renderGallery(job));
  return item;
}

async function deleteJob(job) {
  if (!confirm(`Delete this ${job.model} job and its ${job.artifacts.length} file(s)?`)) return;
  try {
    await api(`/jobs/${job.id}`, { method: "DELETE" });
  } catch (error) {
    return showError(error);
  }
  if ($("gallery").dataset.job === job.id) {
    $("gallery").replaceChildren(Object.assign(document.createElement("p"), { className: "muted", textContent: "Deleted." }));
    delete $("gallery").dataset.job;
    $("details").hidden = true;
    $("download-all").hidden = true;
  }
  loadHistory();
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
  $("api-key").addEventListener("change", (e) => { localStorage.setItem("aigc-api-key", e.target.value.trim()); showError(null); loadModels().catch(showError); loadHistory(); });
  $("model").addEventListener("change", (e) => selectModel(e.target.value));
  $("job-form").addEventListener("submit", submit);
  $("cancel").addEventListener("click", cancel);
  $("reuse").addEventListener("click", () => state.selected && reuse(state.selected.job));
  $("reuse-seed").addEventListener("click", () => state.selected && reuse(state.selected.job, state.selected.artifact));
  $("zoom").addEventListener("click", () => state.selected && openLightbox(state.selected.job, state.selected.artifact));
  $("download").addEventListener("click", () => state.selected && download(state.selected.artifact.url + "?download=true").catch(showError));
  $("download-all").addEventListener("click", () => state.shown && download(`${API}/jobs/${state.shown.id}/archive`).catch(showError));
  $("lightbox-close").addEventListener("click", () => $("lightbox").close());
  $("lightbox").addEventListener("click", (e) => { if (e.target === $("lightbox")) $("lightbox").close(); }); // the backdrop
  $("lightbox-prev").addEventListener("click", () => stepLightbox(-1));
  $("lightbox-next").addEventListener("click", () => stepLightbox(1));
  $("lightbox").addEventListener("keydown", (e) => { if (e.key === "ArrowLeft") stepLightbox(-1); if (e.key === "ArrowRight") stepLightbox(1); });
  let typing;
  $("history-q").addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(() => { state.page = 1; loadHistory(); }, 250); });
  $("history-model").addEventListener("change", () => { state.page = 1; loadHistory(); });
  $("history-status").addEventListener("change", () => { state.page = 1; loadHistory(); });
  $("history-refresh").addEventListener("click", loadHistory);
  $("prev").addEventListener("click", () => { state.page = Math.max(1, state.page - 1); loadHistory(); });
  $("next").addEventListener("click", () => { state.page = Math.min(state.pages, state.page + 1); loadHistory(); });
  health();
  setInterval(health, 15000);
  loadModels().catch(showError);
  loadHistory();
});

// The silverexport dashboard: a client of the public API, nothing more (SPEC §10).
// The key lives in sessionStorage (this tab only) and goes out as a bearer header. Live status
// comes from each job's event stream, read with fetch (EventSource cannot send that header).
"use strict";

const KEY_STORAGE = "silverexport.apiKey";
const MAX_STREAMS = 4; // a browser opens ~6 connections per origin: leave room for the rest
const REFRESH_MS = 10000; // the list is re-read now and then for jobs created elsewhere
const RETRY_MS = 2000;
const ACTIVE = new Set(["queued", "running"]);
const FALLBACK_DATASETS = [
  "decoded_events", "hl_fills", "hl_funding", "native_balance_deltas", "positions",
  "token_transfers",
];

const state = {
  key: null,
  jobs: new Map(), // job_id -> job document
  cursor: null, // next_cursor of the last page shown
  selected: null, // job_id whose history is shown
  history: new Map(), // seq -> event, for the selected job
  streams: new Map(), // job_id -> AbortController
  timer: null,
};

const $ = (selector) => document.querySelector(selector);

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (name === "class") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

// -- talking to the API --------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(path, options = {}) {
  const headers = { Authorization: `Bearer ${state.key}`, ...(options.headers || {}) };
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401) {
    disconnect("That API key was refused. Enter a valid key.", true);
    throw new ApiError(401, "unauthorized", "the API key was refused");
  }
  if (!response.ok) {
    let code = "error";
    let message = `${response.status} ${response.statusText}`;
    try {
      const body = await response.json();
      if (body && body.error) ({ code, message } = body.error);
    } catch (_) { /* not JSON: keep the status line */ }
    throw new ApiError(response.status, code, message);
  }
  return response;
}

async function apiJson(path, options) {
  return (await api(path, options)).json();
}

// -- the key -------------------------------------------------------------------------------

function notice(text, isError = false) {
  const box = $("#notice");
  box.textContent = text;
  box.classList.toggle("error", isError);
  box.hidden = !text;
}

async function connect(key) {
  state.key = key;
  try {
    await loadJobs();
  } catch (error) {
    if (error.status !== 401) notice(`Could not load jobs: ${error.message}`, true);
    return;
  }
  sessionStorage.setItem(KEY_STORAGE, key);
  notice("");
  $("#main").classList.remove("disconnected");
  $("#forget").hidden = false;
  $("#connect").textContent = "Reconnect";
  for (const button of ["#refresh", "#create"]) $(button).disabled = false;
  clearInterval(state.timer);
  state.timer = setInterval(() => loadJobs().catch(() => {}), REFRESH_MS);
}

function disconnect(message = "", isError = false) {
  sessionStorage.removeItem(KEY_STORAGE);
  state.key = null;
  clearInterval(state.timer);
  for (const controller of state.streams.values()) controller.abort();
  state.streams.clear();
  state.jobs.clear();
  state.cursor = null;
  state.selected = null;
  $("#jobs tbody").replaceChildren();
  $("#history").replaceChildren();
  $("#history-job").textContent = "";
  $("#history-empty").hidden = false;
  $("#more").hidden = true;
  $("#jobs-meta").textContent = "";
  $("#live").hidden = true;
  $("#empty").textContent = "Connect with an API key to see your exports.";
  $("#empty").hidden = false;
  $("#main").classList.add("disconnected");
  $("#forget").hidden = true;
  $("#connect").textContent = "Connect";
  $("#api-key").value = "";
  for (const button of ["#refresh", "#create"]) $(button).disabled = true;
  notice(message, isError);
}

// -- jobs ----------------------------------------------------------------------------------

async function loadJobs() {
  const page = await apiJson("/v1/export/jobs");
  for (const job of page.jobs) state.jobs.set(job.job_id, job);
  if (state.cursor === null) state.cursor = page.next_cursor;
  render();
}

async function loadOlder() {
  if (!state.cursor) return;
  const page = await apiJson(`/v1/export/jobs?cursor=${encodeURIComponent(state.cursor)}`);
  for (const job of page.jobs) state.jobs.set(job.job_id, job);
  state.cursor = page.next_cursor;
  render();
}

async function refreshJob(jobId) {
  try {
    const job = await apiJson(`/v1/export/jobs/${jobId}`);
    state.jobs.set(jobId, job);
    render();
  } catch (_) { /* the next list refresh tries again */ }
}

function newestFirst(a, b) {
  if (a.created_at !== b.created_at) return a.created_at < b.created_at ? 1 : -1;
  return 0;
}

function render() {
  const jobs = [...state.jobs.values()].sort(newestFirst);
  const body = $("#jobs tbody");
  const rows = new Map([...body.rows].map((tr) => [tr.dataset.jobId, tr]));
  jobs.forEach((job, index) => {
    let tr = rows.get(job.job_id);
    if (!tr) {
      tr = el("tr", { dataset: { jobId: job.job_id }, onclick: () => selectJob(job.job_id) });
    }
    fillRow(tr, job);
    if (body.rows[index] !== tr) body.insertBefore(tr, body.rows[index] || null);
  });
  const active = jobs.filter((job) => ACTIVE.has(job.status)).length;
  $("#jobs-meta").textContent = jobs.length
    ? `${jobs.length} shown${active ? ` · ${active} active` : ""}`
    : "";
  $("#empty").textContent = "No jobs yet: start an export on the right.";
  $("#empty").hidden = jobs.length > 0;
  $("#more").hidden = !state.cursor;
  ensureStreams(jobs);
}

function fillRow(tr, job) {
  tr.dataset.status = job.status;
  tr.classList.toggle("selected", job.job_id === state.selected);
  tr.title = job.job_id;
  const statusCell = el("td", {}, el("span", { class: `badge ${job.status}` }, job.status));
  if (job.error) statusCell.append(el("span", { class: "error-text" }, job.error));
  const format = job.compression ? `${job.format} · ${job.compression}` : job.format;
  tr.replaceChildren(
    el("td", { class: "created" }, formatTime(job.created_at)),
    el("td", {}, job.dataset),
    el("td", {}, format),
    el("td", { class: "filters" }, describeFilters(job)),
    statusCell,
    el("td", { class: "num rows" }, job.rows === null ? "–" : job.rows.toLocaleString("en")),
    el("td", { class: "num" }, job.bytes === null ? "–" : formatBytes(job.bytes)),
    el("td", { class: "actions" }, ...actionsOf(job)),
  );
}

function actionsOf(job) {
  const actions = [];
  if (job.download_url) {
    actions.push(el("a", {
      class: "download", href: job.download_url,
      onclick: (event) => { event.preventDefault(); event.stopPropagation(); download(job); },
    }, "Download"));
  }
  if (ACTIVE.has(job.status)) {
    actions.push(el("button", {
      type: "button", class: "ghost small danger",
      onclick: (event) => { event.stopPropagation(); cancelJob(job.job_id); },
    }, "Cancel"));
  }
  return actions;
}

function describeFilters(job) {
  const parts = [];
  const f = job.filters || {};
  if (f.target_id) parts.push(`target ${f.target_id}`);
  if (f.network) parts.push(f.network);
  if (f.from || f.to) parts.push(`${f.from || "…"} → ${f.to || "…"}`);
  if (job.limit) parts.push(`≤ ${job.limit} rows`);
  return parts.join(" · ") || "all rows";
}

function formatTime(text) {
  return text ? text.replace("T", " ").replace(/\.\d{3}Z$/, "") : "";
}

function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

async function cancelJob(jobId) {
  try {
    state.jobs.set(jobId, await apiJson(`/v1/export/jobs/${jobId}`, { method: "DELETE" }));
    render();
  } catch (error) {
    notice(`Could not cancel: ${error.message}`, true);
  }
}

async function download(job) {
  try {
    const response = await api(job.download_url);
    const blob = await response.blob();
    const disposition = response.headers.get("Content-Disposition") || "";
    const match = /filename="([^"]+)"/.exec(disposition);
    const link = el("a", { href: URL.createObjectURL(blob), download: match ? match[1] : job.job_id });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 60000);
  } catch (error) {
    notice(`Could not download: ${error.message}`, true);
  }
}

// -- live progress from the event streams --------------------------------------------------

function ensureStreams(jobs) {
  for (const job of jobs) {
    if (state.streams.size >= MAX_STREAMS) break;
    if (ACTIVE.has(job.status) && !state.streams.has(job.job_id)) openStream(job.job_id);
  }
  $("#live").hidden = state.streams.size === 0;
}

async function openStream(jobId, after = null) {
  const controller = new AbortController();
  state.streams.set(jobId, controller);
  let last = after;
  let ended = false;
  try {
    const headers = { Authorization: `Bearer ${state.key}` };
    if (last !== null) headers["Last-Event-ID"] = String(last);
    const response = await fetch(`/v1/export/jobs/${jobId}/stream`, {
      headers, signal: controller.signal, cache: "no-store",
    });
    if (!response.ok) throw new ApiError(response.status, "stream", response.statusText);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const event = parseMessage(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        if (event) {
          last = event.seq;
          ended = onEvent(jobId, event) || ended;
        }
      }
    }
  } catch (error) {
    if (controller.signal.aborted) return;
  }
  if (state.streams.get(jobId) !== controller) return;
  state.streams.delete(jobId);
  if (ended || !state.key) {
    await refreshJob(jobId); // the final document: bytes, sha256, download link
  } else {
    // The server went away (a restart, say): resume after the last event seen.
    setTimeout(() => { if (state.key && !state.streams.has(jobId)) openStream(jobId, last); }, RETRY_MS);
  }
  ensureStreams([...state.jobs.values()].sort(newestFirst));
}

function parseMessage(block) {
  const fields = {};
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue; // a comment: the keep-alive
    const colon = line.indexOf(":");
    const name = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    fields[name] = fields[name] === undefined ? value : `${fields[name]}\n${value}`;
  }
  if (fields.data === undefined) return null; // e.g. `retry:` alone
  return JSON.parse(fields.data);
}

// Applies one event to the row; true when the job has ended.
function onEvent(jobId, event) {
  const job = state.jobs.get(jobId);
  if (job) {
    const data = event.data;
    switch (event.type) {
      case "JobStarted":
        job.status = "running";
        job.attempts = data.attempt;
        job.rows = 0;
        break;
      case "JobProgressed":
        job.rows = data.rows;
        break;
      case "JobCompleted":
        Object.assign(job, { status: "completed", rows: data.rows, bytes: data.bytes });
        break;
      case "JobFailed":
        job.status = data.will_retry ? "queued" : "failed";
        job.error = data.error;
        break;
      case "JobCancelled":
        job.status = "cancelled";
        break;
      case "JobExpired":
        job.status = "expired";
        job.download_url = null;
        break;
      default:
    }
    const tr = document.querySelector(`#jobs tr[data-job-id="${jobId}"]`);
    if (tr) fillRow(tr, job);
  }
  if (jobId === state.selected) addHistory(event);
  const ended = ["JobCompleted", "JobCancelled", "JobExpired"].includes(event.type)
    || (event.type === "JobFailed" && !event.data.will_retry);
  return ended;
}

// -- a job's history -----------------------------------------------------------------------

async function selectJob(jobId) {
  state.selected = jobId;
  state.history.clear();
  for (const tr of $("#jobs tbody").rows) tr.classList.toggle("selected", tr.dataset.jobId === jobId);
  $("#history").replaceChildren();
  $("#history-job").textContent = jobId;
  $("#history-empty").hidden = true;
  try {
    const { events } = await apiJson(`/v1/export/jobs/${jobId}/events`);
    if (state.selected !== jobId) return;
    for (const event of events) addHistory(event);
  } catch (error) {
    notice(`Could not load the history: ${error.message}`, true);
  }
}

function addHistory(event) {
  if (state.history.has(event.seq)) return;
  state.history.set(event.seq, event);
  const item = el("li", { class: event.type, dataset: { seq: String(event.seq) } },
    el("span", { class: "seq" }, `#${event.seq}`),
    el("span", { class: "type" }, event.type,
      el("span", { class: "when" }, formatTime(event.recorded_at))),
    el("span", { class: "detail" }, describeEvent(event)),
  );
  const list = $("#history");
  const after = [...list.children].find((li) => Number(li.dataset.seq) > event.seq);
  list.insertBefore(item, after || null);
}

function describeEvent(event) {
  const d = event.data;
  switch (event.type) {
    case "JobRequested": {
      const asked = [d.dataset, d.format, d.compression].filter(Boolean).join(" · ");
      return `${asked} by ${d.tenant}`;
    }
    case "JobStarted": return `attempt ${d.attempt}${d.owner ? ` on ${d.owner}` : ""}`;
    case "JobProgressed": return `${d.rows.toLocaleString("en")} rows so far`;
    case "JobCompleted":
      return `${d.rows.toLocaleString("en")} rows, ${formatBytes(d.bytes)}${d.truncated ? ", truncated" : ""} · sha256 ${d.sha256.slice(0, 12)}…`;
    case "JobFailed": return `${d.error}${d.will_retry ? " (will retry)" : ""}`;
    case "JobCancelled": return d.reason || "cancelled by request";
    case "JobExpired": return d.file_deleted ? "file deleted" : "expired";
    default: return JSON.stringify(d);
  }
}

// -- the create form -----------------------------------------------------------------------

async function loadDatasets() {
  let datasets = FALLBACK_DATASETS;
  try {
    const doc = await (await fetch("/v1/openapi.json")).json();
    datasets = doc.components.schemas.ExportRequest.properties.dataset.enum || datasets;
  } catch (_) { /* the fallback list */ }
  const select = $("#new-export select[name=dataset]");
  select.replaceChildren(...datasets.map((name) => el("option", { value: name }, name)));
  if (datasets.includes("token_transfers")) select.value = "token_transfers";
}

function requestBody(form) {
  const body = {};
  for (const element of form.elements) {
    if (!element.name || element.value.trim() === "") continue;
    body[element.name] = element.name === "limit" ? Number(element.value) : element.value.trim();
  }
  return body;
}

async function createExport(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const error = $("#form-error");
  error.hidden = true;
  $("#create").disabled = true;
  try {
    const job = await apiJson("/v1/export/dataset", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(requestBody(form)),
    });
    state.jobs.set(job.job_id, job);
    render();
    selectJob(job.job_id);
  } catch (failure) {
    error.textContent = failure.message;
    error.hidden = false;
  } finally {
    $("#create").disabled = !state.key;
  }
}

// -- start ---------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("#key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("#api-key").value.trim();
    if (key) connect(key);
  });
  $("#forget").addEventListener("click", () => disconnect("The key was forgotten."));
  $("#refresh").addEventListener("click", () => loadJobs().catch(() => {}));
  $("#more").addEventListener("click", () => loadOlder().catch(() => {}));
  $("#new-export").addEventListener("submit", createExport);
  loadDatasets();
  const saved = sessionStorage.getItem(KEY_STORAGE);
  if (saved) {
    $("#api-key").value = saved;
    connect(saved);
  }
});

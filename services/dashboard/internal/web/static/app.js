// keyward dashboard: talks to the gateway straight from the browser (CORS).
// It never holds the Anthropic API key; at most a short-lived JWT that its
// own server mints and this page renews before it expires.

const EXAMPLE_CONTEXT = {
  current_mrr: 92148.74,
  previous_mrr: 87234.56,
  active_customers: 1247,
  new_customers_this_month: 86,
  churned_customers_this_month: 31,
  plan_mix: { starter: 712, growth: 418, enterprise: 117 },
};

// The sample dataset the charts draw; "Ask Claude about this chart" sends
// exactly these numbers as the query type's typed data.
const SAMPLE = {
  mrr_series: [
    ["2025-12", 61230.4], ["2026-01", 63890.15], ["2026-02", 66102.8], ["2026-03", 68944.0],
    ["2026-04", 71210.55], ["2026-05", 72980.3], ["2026-06", 74115.9], ["2026-07", 77420.25],
    ["2026-08", 80310.6], ["2026-09", 83672.45], ["2026-10", 87234.56], ["2026-11", 92148.74],
  ].map(([month, value]) => ({ month, value })),
  churn_series: [
    ["2026-06", 1102, 41], ["2026-07", 1131, 38], ["2026-08", 1158, 44],
    ["2026-09", 1180, 35], ["2026-10", 1207, 33], ["2026-11", 1216, 31],
  ].map(([month, customers_start, churned]) => ({ month, customers_start, churned })),
  funnel: [
    ["Visitors", 48210], ["Signups", 5320], ["Trials", 2184], ["Paid", 612], ["Expansion", 139],
  ].map(([stage, count]) => ({ stage, count })),
  cohorts: [
    ["2026-06", [100, 84.2, 76.5, 71.0, 68.3, 66.1]],
    ["2026-07", [100, 86.0, 78.9, 73.4, 70.2]],
    ["2026-08", [100, 82.7, 74.1, 69.8]],
    ["2026-09", [100, 88.1, 80.4]],
    ["2026-10", [100, 87.3]],
    ["2026-11", [100]],
  ].map(([cohort, retention]) => ({ cohort, retention })),
};

// CHARTS: each chart, the catalog query type it asks and the data it sends.
const CHARTS = {
  mrr: { title: "MRR trend", queryType: "mrr_analysis", data: () => ({ mrr_series: SAMPLE.mrr_series }) },
  churn: { title: "Churn", queryType: "churn_analysis", data: () => ({ churn_series: SAMPLE.churn_series }) },
  funnel: { title: "Conversion funnel", queryType: "conversion_analysis", data: () => ({ funnel: SAMPLE.funnel }) },
  cohorts: { title: "Retention by cohort", queryType: "cohort_analysis", data: () => ({ cohorts: SAMPLE.cohorts }) },
};

// SAMPLE_FOR is the sample data sent with a catalog query from the form.
const SAMPLE_FOR = Object.fromEntries(Object.values(CHARTS).map((c) => [c.queryType, c.data]));

const $ = (id) => document.getElementById(id);

const state = {
  gatewayURL: "",
  auth: false,
  token: "",
  tokenTimer: 0,
  limit: null,
  remaining: null,
  window: "",
  resetAt: 0, // ms since epoch when the quota is full again
  retryAt: 0, // ms since epoch when a rate-limited caller may ask again
  retryKind: "",
  catalog: {},
  selectedType: "",
  busy: false,
  abort: null,
  answerText: "",
  charts: {},
};

// ---------------------------------------------------------------- errors

// GatewayError is a refusal with a status; UnreachableError means the
// browser could not get an answer at all (gateway down, or CORS refused).
class GatewayError extends Error {
  constructor(status, body, headers) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.code = (body && body.error) || "";
    this.body = body || {};
    this.retryAfter = Number(headers && headers.get("Retry-After")) || Number(this.body.retry_after) || 0;
    this.requestID = (headers && headers.get("X-Request-ID")) || this.body.request_id || "";
  }
}
class UnreachableError extends Error {}

function windowWords(win) {
  const m = /^(\d+)\s*s$/.exec(win || "");
  const secs = m ? Number(m[1]) : 0;
  if (secs === 1) return "per second";
  if (secs === 60) return "per minute";
  if (secs === 3600) return "per hour";
  if (secs === 86400) return "per day";
  if (secs > 0 && secs % 60 === 0) return `per ${secs / 60} minutes`;
  if (secs > 0) return `per ${secs} seconds`;
  return win ? `per ${win}` : "per window";
}

function describe(err) {
  if (err instanceof UnreachableError) {
    return `The gateway at ${state.gatewayURL} is not reachable. Check that it is running and that it allows this page's origin (${location.origin}).`;
  }
  if (!(err instanceof GatewayError)) {
    return `Something went wrong in this page: ${err.message}`;
  }
  const msg = err.body.message || "";
  const rid = err.requestID ? ` (request ${err.requestID})` : "";
  switch (true) {
    case err.status === 401:
      return state.auth
        ? "Sign-in needed: the gateway did not accept this dashboard's session. Reload the page; if this keeps happening, the dashboard's DASHBOARD_JWT_SECRET does not match the gateway's JWT settings."
        : "Sign-in needed: this gateway only answers signed-in callers, and this dashboard has no session to give you. Ask the operator to set DASHBOARD_JWT_SECRET.";
    case err.status === 403:
      return `The gateway does not allow this request: ${msg || "forbidden"}.`;
    case err.status === 429:
      return rateLimitText(err);
    case err.status === 400 || err.status === 422: {
      const fields = err.body.fields;
      let detail = "";
      if (Array.isArray(fields) && fields.length) {
        const names = fields.map((f) => (typeof f === "string" ? f : f && f.field)).filter(Boolean);
        if (names.length && !names.every((n) => msg.includes(n))) detail = ` (check: ${names.join(", ")})`;
      }
      return `The gateway refused the request: ${msg || "it is not valid"}${detail}.`;
    }
    case err.status === 413:
      return "That request is too large for the gateway. Shorten the question or the context.";
    case err.status === 415:
      return "The gateway wants JSON; this page sent something else.";
    case err.status === 503:
      return `The gateway is busy or restarting; try again in a moment${rid}.`;
    case err.status >= 500:
      return `The gateway could not get an answer from Claude (${err.status}${msg ? ": " + msg : ""})${rid}.`;
    default:
      return `The gateway answered ${err.status}${msg ? ": " + msg : ""}${rid}.`;
  }
}

function rateLimitText(err) {
  const secs = Math.max(1, Math.ceil((state.retryAt - Date.now()) / 1000));
  const wait = state.retryAt > Date.now() ? `try again in ${secs} s` : "you can try again now";
  if (state.retryKind === "requests" && state.limit) {
    return `You've hit the limit of ${state.limit} questions ${windowWords(state.window)}; ${wait}.`;
  }
  const msg = (err && err.body && err.body.message) || "A limit was reached";
  return `${msg.replace(/\.$/, "")}; ${wait}.`;
}

let lastError = null;
function showError(err) {
  lastError = err;
  if (err instanceof GatewayError && err.status === 429) {
    state.retryAt = Date.now() + Math.max(1, err.retryAfter || 1) * 1000;
    const code = (err.code || "").toLowerCase();
    // Token, budget and stream limits have their own words ("Maximum 2000
    // tokens per minute"); the request limit is the one a person meets, so
    // it gets the plain sentence.
    const msg = String((err.body && err.body.message) || "");
    state.retryKind = /budget/.test(code) || (msg && !/request/i.test(msg)) ? "other" : "requests";
  }
  $("error-text").textContent = describe(err);
  const answer = $("answer");
  if (answer.dataset.state === "error" && answer.textContent === "") {
    // An empty panel looks broken; say why there is no answer.
    const note = document.createElement("span");
    note.className = "placeholder";
    note.textContent = "No answer: see the message above.";
    answer.append(note);
  }
  $("error").classList.toggle("banner-warn", err instanceof GatewayError && err.status === 429);
  $("error").hidden = false;
  if (err instanceof UnreachableError) setGatewayStatus(false);
}
function clearError() {
  lastError = null;
  $("error").hidden = true;
}

// ---------------------------------------------------------------- gateway calls

// noteLimits reads the rate-limit headers the gateway exposes through CORS.
function noteLimits(headers) {
  const remaining = headers.get("RateLimit-Remaining");
  const limit = headers.get("RateLimit-Limit");
  const reset = headers.get("RateLimit-Reset");
  if (limit !== null && limit !== "" && !isNaN(Number(limit))) state.limit = Number(limit);
  if (remaining !== null && remaining !== "" && !isNaN(Number(remaining))) state.remaining = Number(remaining);
  if (reset !== null && reset !== "" && !isNaN(Number(reset))) {
    const n = Number(reset);
    // RateLimit-Reset is delta-seconds; tolerate an absolute unix time too.
    state.resetAt = n > 1e9 ? n * 1000 : Date.now() + n * 1000;
  }
  renderQuota();
}

async function gatewayFetch(path, init = {}, retried = false) {
  const headers = new Headers(init.headers || {});
  if (state.token) headers.set("Authorization", `Bearer ${state.token}`);
  let resp;
  try {
    resp = await fetch(state.gatewayURL + path, { ...init, headers, mode: "cors", credentials: "omit", cache: "no-store" });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new UnreachableError(e.message);
  }
  setGatewayStatus(true);
  noteLimits(resp.headers);
  if (resp.ok) return resp;
  let body = {};
  try {
    body = await resp.json();
  } catch (_) {
    body = {};
  }
  if (resp.status === 401 && state.auth && !retried) {
    // The token may have expired while the tab slept: renew once, retry.
    if (await refreshToken()) return gatewayFetch(path, init, true);
  }
  throw new GatewayError(resp.status, body, resp.headers);
}

async function gatewayJSON(path, init) {
  const resp = await gatewayFetch(path, init);
  return resp.json();
}

// ---------------------------------------------------------------- session

async function refreshToken() {
  clearTimeout(state.tokenTimer);
  try {
    const resp = await fetch("/token", { method: "POST", cache: "no-store" });
    if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
    const tok = await resp.json();
    state.token = tok.token;
    const ttl = Math.max(30, Number(tok.expires_in) || 300);
    // Renew well before expiry so a request never goes out with a stale token.
    state.tokenTimer = setTimeout(refreshToken, ttl * 800);
    $("session").textContent = `Signed in as ${tok.subject || "dashboard"}`;
    $("session").hidden = false;
    return true;
  } catch (e) {
    state.token = "";
    $("session").textContent = "Not signed in";
    $("session").hidden = false;
    return false;
  }
}

// ---------------------------------------------------------------- status

function setGatewayStatus(up) {
  const pill = $("gateway-status");
  pill.classList.remove("pill-unknown", "pill-ok", "pill-bad");
  pill.classList.add(up ? "pill-ok" : "pill-bad");
  $("gateway-status-text").textContent = up ? "Gateway connected" : "Gateway unreachable";
}

async function checkHealth() {
  try {
    const h = await gatewayJSON("/health");
    $("version").textContent = h.version ? ` · gateway ${h.version}` : "";
    if (lastError instanceof UnreachableError) {
      // The gateway is back: drop the stale warning and catch up.
      clearError();
      if (document.body.dataset.ready === "true") {
        loadQuota();
        if (!Object.keys(state.catalog).length) loadCatalog();
      }
    }
  } catch (e) {
    showError(e);
  }
}

async function loadQuota() {
  try {
    const s = await gatewayJSON("/api/rate-limit-status");
    state.limit = Number(s.limit);
    state.remaining = Number(s.remaining);
    state.window = s.window || state.window;
    if (s.reset) state.resetAt = Number(s.reset) * 1000;
    else if (s.reset_after_seconds !== undefined) state.resetAt = Date.now() + Number(s.reset_after_seconds) * 1000;
    renderQuota(s);
  } catch (e) {
    if (e instanceof GatewayError && e.status === 429) {
      state.remaining = 0;
      renderQuota();
    } else if (!(e instanceof UnreachableError) || !lastError) {
      showError(e);
    }
  }
}

function fmtSeconds(secs) {
  if (secs < 90) return `${secs} s`;
  const m = Math.floor(secs / 60);
  const s = secs % 60;
  if (m < 90) return s ? `${m} min ${s} s` : `${m} min`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

function renderQuota(status) {
  const hasNumbers = state.limit !== null && state.remaining !== null;
  $("quota-remaining").textContent = hasNumbers ? String(state.remaining) : "–";
  $("quota-limit").textContent = state.limit !== null ? String(state.limit) : "–";
  $("quota-window").textContent = state.window ? windowWords(state.window) : "";
  const bar = $("quota-bar");
  const frac = hasNumbers && state.limit > 0 ? Math.max(0, Math.min(1, state.remaining / state.limit)) : 0;
  bar.style.width = `${(frac * 100).toFixed(1)}%`;
  bar.classList.toggle("low", frac > 0 && frac <= 0.2);
  bar.parentElement.classList.toggle("empty", hasNumbers && state.remaining === 0);
  renderReset();
  if (status) renderExtra(status);
}

function renderReset() {
  const el = $("quota-reset");
  if (state.limit === null || state.remaining === null) {
    el.textContent = "";
    return;
  }
  const secs = Math.ceil((state.resetAt - Date.now()) / 1000);
  if (state.remaining >= state.limit || secs <= 0) {
    el.textContent = "Your full quota is available.";
  } else {
    const at = new Date(state.resetAt).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
    el.textContent = `All ${state.limit} back in ${fmtSeconds(secs)} (at ${at}).`;
  }
}

function renderExtra(s) {
  const dl = $("quota-extra");
  dl.replaceChildren();
  const row = (k, v) => {
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = v;
    dl.append(dt, dd);
  };
  if (s.tokens && typeof s.tokens === "object" && s.tokens.limit_per_minute) {
    row("Tokens", `${Number(s.tokens.remaining).toLocaleString()} of ${Number(s.tokens.limit_per_minute).toLocaleString()} per minute`);
  }
  if (s.budget && typeof s.budget === "object" && s.budget.daily_usd) {
    row("Budget today", `$${Number(s.budget.remaining_usd).toFixed(2)} of $${Number(s.budget.daily_usd).toFixed(2)} left`);
  }
  if (s.tier) row("Tier", s.tier);
  if (s.backend) {
    const words = { redis: "shared (Redis)", memory: "this gateway only", degraded: "degraded: Redis unreachable, local fallback" };
    row("Limiter", words[s.backend] || s.backend);
  }
}

// A one-second tick keeps the countdowns honest without asking the gateway.
function tick() {
  renderReset();
  if (lastError instanceof GatewayError && lastError.status === 429) {
    $("error-text").textContent = describe(lastError);
  }
  if (state.remaining === 0 && state.resetAt && Date.now() >= state.resetAt) loadQuota();
}

// ---------------------------------------------------------------- answer panel

function startAnswer(title) {
  const el = $("answer");
  el.replaceChildren();
  state.answerText = "";
  el.dataset.state = "streaming";
  $("answer-question").textContent = title;
  $("answer-meta").textContent = "";
}

// appendAnswer adds streamed text and re-renders the answer as Markdown.
function appendAnswer(text) {
  state.answerText += text;
  $("answer").replaceChildren(renderMarkdown(state.answerText));
}

// renderMarkdown turns Markdown into DOM nodes built with createElement and
// text nodes only: no HTML string from the answer is ever parsed, so nothing
// in it can become markup or script (the sanitising is by construction).
// It covers what answers use: headings, paragraphs, lists, fenced code,
// **bold**, *italic*, `code`. Links stay text.
function renderMarkdown(src) {
  const root = document.createDocumentFragment();
  const lines = src.replace(/\r\n?/g, "\n").split("\n");
  let para = [];
  let list = null;
  const flushPara = () => {
    if (para.length) {
      const p = document.createElement("p");
      inline(p, para.join("\n"));
      root.append(p);
      para = [];
    }
  };
  const endList = () => { list = null; };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    let m;
    if (/^```/.test(line)) {
      flushPara(); endList();
      const pre = document.createElement("pre");
      const code = document.createElement("code");
      const body = [];
      for (i++; i < lines.length && !/^```/.test(lines[i]); i++) body.push(lines[i]);
      code.textContent = body.join("\n");
      pre.append(code);
      root.append(pre);
    } else if ((m = /^(#{1,6})\s+(.*)$/.exec(line))) {
      flushPara(); endList();
      const h = document.createElement(m[1].length <= 2 ? "h3" : "h4");
      inline(h, m[2]);
      root.append(h);
    } else if ((m = /^\s*(?:([-*+])|(\d+)[.)])\s+(.*)$/.exec(line))) {
      flushPara();
      const tag = m[1] ? "ul" : "ol";
      if (!list || list.tagName.toLowerCase() !== tag) {
        list = document.createElement(tag);
        root.append(list);
      }
      const li = document.createElement("li");
      inline(li, m[3]);
      list.append(li);
    } else if (line.trim() === "") {
      flushPara(); endList();
    } else {
      endList();
      para.push(line);
    }
  }
  flushPara();
  return root;
}

// inline appends text with **bold**, *italic* and `code` spans.
function inline(parent, text) {
  // Underscores are left alone: answers name fields like mrr_series.
  const re = /(`[^`\n]+`|\*\*[^*\n]+\*\*|\*[^*\s][^*\n]*\*)/g;
  let last = 0;
  for (const m of text.matchAll(re)) {
    if (m.index > last) parent.append(document.createTextNode(text.slice(last, m.index)));
    const tok = m[0];
    let el;
    if (tok.startsWith("`")) {
      el = document.createElement("code");
      el.textContent = tok.slice(1, -1);
    } else if (tok.startsWith("**")) {
      el = document.createElement("strong");
      inline(el, tok.slice(2, -2));
    } else {
      el = document.createElement("em");
      inline(el, tok.slice(1, -1));
    }
    parent.append(el);
    last = m.index + tok.length;
  }
  if (last < text.length) parent.append(document.createTextNode(text.slice(last)));
}

function finishAnswer(meta, ok) {
  $("answer").dataset.state = ok ? "done" : "error";
  $("answer").dataset.cache = (meta && meta.cache) || "";
  if (!meta) return;
  const parts = [];
  // A shared answer: another identical question paid for the Claude call.
  if (meta.cache === "hit") parts.push("cached answer (no new Claude call)");
  if (meta.model) parts.push(meta.model);
  if (meta.usage) parts.push(`${meta.usage.input_tokens ?? 0} tokens in · ${meta.usage.output_tokens ?? 0} out`);
  if (meta.request_id) parts.push(`request ${meta.request_id}`);
  $("answer-meta").textContent = parts.join(" · ");
}

function setBusy(busy) {
  state.busy = busy;
  $("ask").disabled = busy;
  $("run-analytics").disabled = busy || !state.selectedType;
  for (const btn of document.querySelectorAll(".ask-chart")) btn.disabled = busy;
  $("stop").hidden = !busy;
}

// ---------------------------------------------------------------- ask (streaming)

function readContext() {
  const area = $("context");
  const problem = $("context-problem");
  let value;
  try {
    value = area.value.trim() === "" ? {} : JSON.parse(area.value);
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      throw new Error("it must be a JSON object, like {\"current_mrr\": 92148.74}");
    }
  } catch (e) {
    problem.textContent = `Context is not valid: ${e.message}`;
    problem.hidden = false;
    area.classList.add("invalid");
    return null;
  }
  problem.hidden = true;
  area.classList.remove("invalid");
  return value;
}

// parseSSE feeds complete events from buf to onEvent and returns the rest.
function parseSSE(buf, onEvent) {
  buf = buf.replace(/\r\n?/g, "\n");
  let idx;
  while ((idx = buf.indexOf("\n\n")) >= 0) {
    const raw = buf.slice(0, idx);
    buf = buf.slice(idx + 2);
    let event = "message";
    const data = [];
    for (const line of raw.split("\n")) {
      if (line === "" || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") event = value;
      else if (field === "data") data.push(value);
    }
    if (data.length) onEvent(event, data.join("\n"));
  }
  return buf;
}

async function ask(ev) {
  ev.preventDefault();
  if (state.busy) return;
  const question = $("question").value.trim();
  if (!question) {
    $("question").classList.add("invalid");
    $("question").focus();
    return;
  }
  $("question").classList.remove("invalid");
  const context = readContext();
  if (context === null) return;
  await streamAnswer("/api/query", { question, context, stream: true }, question);
}

// streamAnswer posts body to path, asking for SSE, and writes the answer
// into the panel as it arrives. fetch + ReadableStream, since EventSource
// cannot POST.
async function streamAnswer(path, body, title) {
  clearError();
  setBusy(true);
  startAnswer(title);
  const ctrl = new AbortController();
  state.abort = ctrl;
  let finished = false;
  try {
    const resp = await gatewayFetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
      body: JSON.stringify(body),
      signal: ctrl.signal,
    });
    if (!(resp.headers.get("Content-Type") || "").includes("text/event-stream")) {
      // A gateway that answered in one piece.
      const a = await resp.json();
      a.cache = resp.headers.get("X-Keyward-Cache") || "";
      appendAnswer(a.answer || "");
      finishAnswer(a, true);
      finished = true;
      return;
    }
    const reader = resp.body.getReader();
    const decoder = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf = parseSSE(buf + decoder.decode(value, { stream: true }), (event, data) => {
        let payload = {};
        try {
          payload = JSON.parse(data);
        } catch (_) {
          return;
        }
        if (event === "delta" && typeof payload.text === "string") {
          appendAnswer(payload.text);
        } else if (event === "done") {
          finishAnswer(payload, true);
          finished = true;
        } else if (event === "error") {
          finishAnswer(payload, false);
          finished = true;
          showError(new GatewayError(502, payload, null));
        }
      });
    }
    if (!finished) {
      finishAnswer(null, false);
      showError(new Error("the answer stopped before it was complete; the connection to the gateway was lost"));
    }
  } catch (e) {
    if (e.name === "AbortError") {
      finishAnswer(null, true);
      $("answer-meta").textContent = "Stopped.";
    } else {
      finishAnswer(null, false);
      showError(e);
    }
  } finally {
    state.abort = null;
    setBusy(false);
    loadQuota();
  }
}

// ---------------------------------------------------------------- analytics

const ACRONYMS = new Set(["mrr", "arr", "ltv", "cac", "arpu", "nps", "id", "n"]);

// humanize turns "mrr_analysis" into "MRR analysis" and "top_n" into "Top N".
function humanize(name) {
  const words = String(name).split("_").filter(Boolean).map((w) => (ACRONYMS.has(w) ? w.toUpperCase() : w));
  if (!words.length) return String(name);
  words[0] = words[0].charAt(0).toUpperCase() + words[0].slice(1);
  return words.join(" ");
}

function renderCatalog() {
  const tabs = $("query-types");
  tabs.replaceChildren();
  const names = Object.keys(state.catalog).sort();
  for (const name of names) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "tab";
    b.id = `qt-${name}`;
    b.setAttribute("role", "tab");
    b.textContent = humanize(name);
    b.addEventListener("click", () => selectType(name));
    tabs.append(b);
  }
  // The seed's own example is MRR, so start there when the catalog has it.
  const first = state.catalog[state.selectedType] ? state.selectedType : state.catalog.mrr_analysis ? "mrr_analysis" : names[0];
  if (names.length) selectType(first);
  else $("query-description").textContent = "This gateway has no analytics queries configured.";
}

function selectType(name) {
  state.selectedType = name;
  for (const b of $("query-types").children) b.setAttribute("aria-selected", String(b.id === `qt-${name}`));
  const qt = state.catalog[name] || {};
  $("query-description").textContent = qt.description || "";
  const box = $("query-params");
  box.replaceChildren();
  const params = qt.parameters || {};
  // Required parameters first, then the rest, each group alphabetical.
  const order = Object.keys(params).sort((a, b) => Number(!!params[b].required) - Number(!!params[a].required) || a.localeCompare(b));
  for (const pname of order) box.append(paramField(pname, params[pname] || {}));
  setBusy(state.busy);
}

function labelText(name, spec) {
  const span = document.createElement("span");
  span.className = "label";
  span.textContent = humanize(name);
  if (spec.required) {
    const star = document.createElement("span");
    star.className = "required";
    star.textContent = " *";
    span.append(star);
  }
  return span;
}

function paramField(name, spec) {
  const id = `param-${name}`;
  if (spec.type === "boolean") {
    const label = document.createElement("label");
    label.className = "check";
    const input = document.createElement("input");
    input.type = "checkbox";
    input.id = id;
    input.dataset.param = name;
    input.dataset.kind = "boolean";
    label.append(input, document.createTextNode(humanize(name)));
    return label;
  }
  const label = document.createElement("label");
  label.className = "field";
  label.append(labelText(name, spec));
  let input;
  if (spec.type === "enum" && Array.isArray(spec.values)) {
    input = document.createElement("select");
    if (!spec.required) input.append(new Option("(any)", ""));
    for (const v of spec.values) input.append(new Option(String(v).replace(/_/g, " "), v));
  } else {
    input = document.createElement("input");
    if (spec.type === "integer" || spec.type === "number") {
      input.type = "number";
      if (spec.type === "integer") input.step = "1";
      if (spec.min !== undefined) input.min = spec.min;
      if (spec.max !== undefined) input.max = spec.max;
      const range = spec.min !== undefined && spec.max !== undefined ? `${spec.min}–${spec.max}` : "";
      input.placeholder = spec.required ? range : range ? `${range}, optional` : "optional";
    } else {
      input.type = "text";
      if (spec.max_length) input.maxLength = spec.max_length;
      input.placeholder = spec.required ? "" : "optional";
    }
  }
  input.id = id;
  input.dataset.param = name;
  input.dataset.kind = spec.type || "string";
  if (spec.required) input.required = true;
  label.append(input);
  return label;
}

function readParams() {
  const out = {};
  let ok = true;
  for (const input of $("query-params").querySelectorAll("[data-param]")) {
    const name = input.dataset.param;
    input.classList.remove("invalid");
    if (input.dataset.kind === "boolean") {
      out[name] = input.checked;
      continue;
    }
    const raw = input.value.trim();
    if (raw === "") {
      if (input.required) {
        input.classList.add("invalid");
        ok = false;
      }
      continue;
    }
    if (input.dataset.kind === "integer" || input.dataset.kind === "number") {
      const n = Number(raw);
      if (!Number.isFinite(n) || (input.dataset.kind === "integer" && !Number.isInteger(n))) {
        input.classList.add("invalid");
        ok = false;
        continue;
      }
      out[name] = n;
    } else {
      out[name] = raw;
    }
  }
  return ok ? out : null;
}

async function loadCatalog() {
  try {
    const cat = await gatewayJSON("/api/analytics-query-types");
    state.catalog = cat.query_types || {};
    renderCatalog();
  } catch (e) {
    $("query-description").textContent = "The query catalog could not be loaded.";
    if (!lastError) showError(e);
  }
}

async function runAnalytics(ev) {
  ev.preventDefault();
  if (state.busy || !state.selectedType) return;
  const parameters = readParams();
  if (parameters === null) return;
  const shown = Object.entries(parameters)
    .filter(([, v]) => v !== false)
    .map(([k, v]) => (v === true ? humanize(k) : `${humanize(k)}: ${String(v).replace(/_/g, " ")}`))
    .join(", ");
  const title = `${humanize(state.selectedType)}${shown ? " · " + shown : ""}`;
  const cached = Number((state.catalog[state.selectedType] || {}).cache_ttl_seconds) > 0;
  const body = { query_type: state.selectedType, parameters, stream: !cached };
  if (SAMPLE_FOR[state.selectedType]) body.data = SAMPLE_FOR[state.selectedType]();
  await streamAnswer("/api/analytics-query", body, title);
}

// ---------------------------------------------------------------- charts

const PALETTE = ["#2f5bea", "#c96a1a", "#12a150", "#8e44ad", "#d92d20", "#0f9bb3"];

// drawCharts draws the sample dataset with the bundled Chart.js (no
// animation, so a screenshot shows the finished charts).
function drawCharts() {
  if (!window.Chart) {
    for (const el of document.querySelectorAll(".chart-box")) el.textContent = "Charts could not be drawn: the chart library did not load.";
    return;
  }
  const Chart = window.Chart;
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.font.family = getComputedStyle(document.documentElement).fontFamily;
  const money = (v) => "$" + Number(v).toLocaleString("en-US", { maximumFractionDigits: 0 });
  state.charts = {
    mrr: new Chart($("chart-mrr"), {
      type: "line",
      data: {
        labels: SAMPLE.mrr_series.map((r) => r.month),
        datasets: [{ label: "MRR", data: SAMPLE.mrr_series.map((r) => r.value), borderColor: PALETTE[0], backgroundColor: "rgba(47,91,234,.12)", fill: true, tension: 0.25 }],
      },
      options: { plugins: { legend: { display: false } }, scales: { y: { ticks: { callback: money } } } },
    }),
    churn: new Chart($("chart-churn"), {
      data: {
        labels: SAMPLE.churn_series.map((r) => r.month),
        datasets: [
          { type: "bar", label: "Churned customers", data: SAMPLE.churn_series.map((r) => r.churned), backgroundColor: PALETTE[1], yAxisID: "y" },
          { type: "line", label: "Churn rate %", data: SAMPLE.churn_series.map((r) => +(100 * r.churned / r.customers_start).toFixed(2)), borderColor: PALETTE[4], yAxisID: "rate" },
        ],
      },
      options: { scales: { y: { beginAtZero: true }, rate: { position: "right", beginAtZero: true, grid: { drawOnChartArea: false } } } },
    }),
    funnel: new Chart($("chart-funnel"), {
      type: "bar",
      data: {
        labels: SAMPLE.funnel.map((r) => r.stage),
        datasets: [{ label: "Prospects", data: SAMPLE.funnel.map((r) => r.count), backgroundColor: PALETTE.slice(0, SAMPLE.funnel.length) }],
      },
      options: { indexAxis: "y", plugins: { legend: { display: false } }, scales: { x: { type: "logarithmic" } } },
    }),
    cohorts: new Chart($("chart-cohorts"), {
      type: "line",
      data: {
        labels: Array.from({ length: Math.max(...SAMPLE.cohorts.map((c) => c.retention.length)) }, (_, i) => `M${i}`),
        datasets: SAMPLE.cohorts.map((c, i) => ({ label: c.cohort, data: c.retention, borderColor: PALETTE[i % PALETTE.length], tension: 0.2 })),
      },
      options: { scales: { y: { min: 0, max: 100, ticks: { callback: (v) => v + "%" } } } },
    }),
  };
  for (const btn of document.querySelectorAll(".ask-chart")) btn.addEventListener("click", () => askChart(btn.dataset.chart));
  document.body.dataset.charts = "drawn";
}

// askChart sends the chart's numbers through its typed catalog query.
async function askChart(name) {
  const c = CHARTS[name];
  if (!c || state.busy) return;
  // A type the gateway caches is asked in one piece: its answer arrives
  // whole either way, and the JSON answer says whether it was shared.
  const cached = Number((state.catalog[c.queryType] || {}).cache_ttl_seconds) > 0;
  await streamAnswer("/api/analytics-query", {
    query_type: c.queryType,
    parameters: { time_period: "last_12_months" },
    data: c.data(),
    stream: !cached,
  }, `Ask Claude about the ${c.title} chart`);
}

// ---------------------------------------------------------------- start

function resetContext() {
  $("context").value = JSON.stringify(EXAMPLE_CONTEXT, null, 2);
  readContext();
}

async function main() {
  resetContext();
  $("ask-form").addEventListener("submit", ask);
  $("analytics-form").addEventListener("submit", runAnalytics);
  $("stop").addEventListener("click", () => state.abort && state.abort.abort());
  $("reset-context").addEventListener("click", resetContext);
  $("context").addEventListener("input", () => readContext());
  $("error-close").addEventListener("click", clearError);
  drawCharts();

  let cfg;
  try {
    cfg = await (await fetch("/config.json", { cache: "no-store" })).json();
  } catch (e) {
    showError(new Error("the dashboard's own server did not answer; reload the page"));
    return;
  }
  state.gatewayURL = String(cfg.gateway_url || "").replace(/\/+$/, "");
  state.auth = Boolean(cfg.auth);
  $("gateway-url").textContent = state.gatewayURL;
  if (state.auth) await refreshToken();

  await checkHealth();
  await Promise.all([loadQuota(), loadCatalog()]);
  setInterval(tick, 1000);
  setInterval(checkHealth, 30000);
  document.body.dataset.ready = "true";
}

main();

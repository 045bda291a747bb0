// The operator page: spend per identity and per model over days, the top
// spenders and a CSV export, from the gateway's usage ledger. Every call
// goes to this dashboard's own server (/ops/...), which holds the admin
// token; the page only ever has a session cookie it cannot read (HttpOnly).
// The DOM is built with textContent: identities and model names come from
// callers and are untrusted text.

const $ = (id) => document.getElementById(id);

// How many identities get their own series; the rest are summed as "others".
const TOP_SERIES = 7;
const PALETTE = ["#2f5bea", "#c96a1a", "#12a150", "#9b51e0", "#d92d20", "#0e9384", "#d98a06", "#667085", "#e04f9c", "#5c6ac4"];
const OTHERS = "others";

const state = { charts: {}, selected: "" };

// ---------------------------------------------------------------- helpers

function isoDay(d) { return d.toISOString().slice(0, 10); }

function daysBetween(from, to) {
  const out = [];
  for (let d = new Date(from + "T00:00:00Z"); isoDay(d) <= to; d.setUTCDate(d.getUTCDate() + 1)) out.push(isoDay(d));
  return out;
}

const usd = (v) => "$" + (v >= 1 ? v.toFixed(2) : v.toFixed(4));
const int = (v) => new Intl.NumberFormat("en-US").format(v);

class HTTPError extends Error {
  constructor(status, body) {
    super((body && body.message) || `the dashboard answered ${status}`);
    this.status = status;
  }
}

async function call(path, init) {
  const resp = await fetch(path, { credentials: "same-origin", cache: "no-store", ...init });
  let body = null;
  try { body = await resp.json(); } catch { /* not JSON: the status says enough */ }
  if (!resp.ok) throw new HTTPError(resp.status, body);
  return body;
}

function showError(msg) {
  $("error-text").textContent = msg;
  $("error").hidden = !msg;
}

function range() {
  const q = new URLSearchParams({ from: $("from").value, to: $("to").value });
  const id = $("identity").value.trim();
  if (id) q.set("identity", id);
  return q;
}

function usage(extra) {
  const q = range();
  for (const [k, v] of Object.entries(extra)) q.set(k, v);
  return call("/ops/api/usage?" + q.toString());
}

// ---------------------------------------------------------------- session

function showSignIn(problem) {
  for (const c of Object.values(state.charts)) c.destroy();
  state.charts = {};
  $("report").hidden = true;
  $("sign-out").hidden = true;
  $("session-text").textContent = "";
  $("sign-in").hidden = false;
  $("sign-in-problem").textContent = problem || "";
  $("sign-in-problem").hidden = !problem;
  document.body.dataset.state = "signed-out";
  $("admin-token").focus();
}

async function signIn(ev) {
  ev.preventDefault();
  const input = $("admin-token");
  const token = input.value;
  // The token leaves the page's memory as soon as it is sent.
  input.value = "";
  if (!token.trim()) { showSignIn("Enter the admin token."); return; }
  $("sign-in-button").disabled = true;
  try {
    const s = await call("/ops/session", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ token }),
    });
    signedIn(s);
  } catch (e) {
    showSignIn(e.status === 401 ? "That is not the gateway's admin token." : e.message);
  } finally {
    $("sign-in-button").disabled = false;
  }
}

async function signOut() {
  try { await call("/ops/session", { method: "DELETE" }); } catch { /* the cookie is cleared either way */ }
  showSignIn("Signed out.");
}

function signedIn(s) {
  $("sign-in").hidden = true;
  $("report").hidden = false;
  $("sign-out").hidden = false;
  $("session-text").textContent = "Signed in until " + new Date(s.expires_at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  load();
}

// ---------------------------------------------------------------- report

// seriesByDay turns rows (day × key) into one dataset per key over days,
// keeping the TOP_SERIES biggest keys and summing the rest into "others".
function seriesByDay(rows, key, days) {
  const totals = new Map();
  for (const r of rows) totals.set(r[key], (totals.get(r[key]) || 0) + r.cost_micro_usd);
  const ranked = [...totals.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([k]) => k);
  const kept = ranked.slice(0, TOP_SERIES);
  const keptSet = new Set(kept);
  const names = ranked.length > kept.length ? [...kept, OTHERS] : kept;
  const index = new Map(days.map((d, i) => [d, i]));
  const data = new Map(names.map((n) => [n, days.map(() => 0)]));
  for (const r of rows) {
    const name = keptSet.has(r[key]) ? r[key] : OTHERS;
    const i = index.get(r.day);
    if (i !== undefined) data.get(name)[i] += r.cost_micro_usd / 1e6;
  }
  return names.map((n, i) => ({
    label: n, data: data.get(n).map((v) => Math.round(v * 1e6) / 1e6),
    backgroundColor: n === OTHERS ? "#c4cad6" : PALETTE[i % PALETTE.length], borderWidth: 0, stack: "spend",
  }));
}

function drawChart(id, days, datasets) {
  const Chart = window.Chart;
  if (state.charts[id]) state.charts[id].destroy();
  state.charts[id] = new Chart($(id), {
    type: "bar",
    data: { labels: days.map((d) => d.slice(5)), datasets },
    options: {
      animation: false, maintainAspectRatio: false,
      plugins: {
        legend: { position: "bottom", labels: { boxWidth: 12 } },
        tooltip: { callbacks: { label: (c) => `${c.dataset.label}: ${usd(c.parsed.y)}` } },
      },
      scales: { x: { stacked: true, grid: { display: false } }, y: { stacked: true, beginAtZero: true, ticks: { callback: (v) => "$" + v } } },
    },
  });
}

function fillTop(rep, total) {
  const body = $("top-body");
  body.replaceChildren();
  $("top-empty").hidden = rep.rows.length > 0;
  rep.rows.forEach((r, i) => {
    const tr = document.createElement("tr");
    tr.dataset.identity = r.identity;
    tr.setAttribute("aria-selected", String(r.identity === state.selected));
    const share = total > 0 ? r.cost_micro_usd / total : 0;
    const cells = [String(i + 1), r.identity, int(r.requests), int(r.input_tokens), int(r.output_tokens), int(r.cache_hits), usd(r.cost_usd)];
    cells.forEach((v, j) => {
      const td = document.createElement("td");
      td.textContent = v;
      if (j === 1) td.className = "identity";
      if (j > 1) td.className = "num";
      tr.append(td);
    });
    const td = document.createElement("td");
    td.className = "num";
    td.textContent = (share * 100).toFixed(1) + "%";
    const bar = document.createElement("span");
    bar.className = "share";
    bar.style.width = Math.max(2, Math.round(share * 60)) + "px";
    td.append(bar);
    tr.append(td);
    tr.addEventListener("click", () => showIdentity(r.identity));
    body.append(tr);
  });
}

async function load() {
  const from = $("from").value, to = $("to").value;
  if (!from || !to) { showError("Choose a from and a to date."); return; }
  document.body.dataset.state = "loading";
  showError("");
  const csv = range();
  csv.set("group_by", "day,identity,model");
  csv.set("format", "csv");
  $("csv").href = "/ops/api/usage?" + csv.toString();
  try {
    const [byIdentity, byModel, top] = await Promise.all([
      usage({ group_by: "day,identity" }),
      usage({ group_by: "day,model" }),
      usage({ group_by: "identity", top: "15" }),
    ]);
    const days = daysBetween(byIdentity.from, byIdentity.to);
    const t = byIdentity.total;
    $("total-cost").textContent = usd(t.cost_usd);
    $("total-requests").textContent = int(t.requests);
    $("total-tokens").textContent = `${int(t.input_tokens)} / ${int(t.output_tokens)}`;
    $("total-identities").textContent = int(new Set(byIdentity.rows.map((r) => r.identity)).size);
    $("backend-note").textContent = byIdentity.note || `Ledger in ${byIdentity.backend}, days kept for ${byIdentity.retention_days} days. Times are UTC days.`;
    if (window.Chart) {
      drawChart("chart-identities", days, seriesByDay(byIdentity.rows, "identity", days));
      drawChart("chart-models", days, seriesByDay(byModel.rows, "model", days));
    } else {
      showError("The charts could not be drawn: the chart library did not load.");
    }
    fillTop(top, t.cost_micro_usd);
    document.body.dataset.state = "report";
  } catch (e) {
    if (e.status === 401) { showSignIn("Your session is over: sign in again."); return; }
    document.body.dataset.state = "error";
    showError(e.message);
  }
}

async function showIdentity(id) {
  state.selected = id;
  for (const tr of $("top-body").children) tr.setAttribute("aria-selected", String(tr.dataset.identity === id));
  const dl = $("identity-details");
  dl.replaceChildren();
  $("identity-hint").textContent = id;
  try {
    const s = await call("/ops/api/identities/" + id.split("/").map(encodeURIComponent).join("/"));
    const l = s.limits;
    // Today's spend from the ledger; the limiter counts spend only against a budget.
    const today = (s.today || []).reduce((sum, r) => sum + r.cost_micro_usd, 0) / 1e6;
    const rows = [
      ["Tier", `${s.tier || "default"} (from ${s.tier_from})`],
      ["Requests", `${l.requests_remaining} of ${l.requests} left per ${l.window_seconds} s`],
      ["Tokens per minute", l.tokens_per_minute ? `${int(s.tokens_remaining)} of ${int(l.tokens_per_minute)} left` : "no limit"],
      ["Daily budget", l.daily_budget_usd ? usd(l.daily_budget_usd) : "no budget"],
      ["Spent today", usd(today)],
      ["Budget left", l.daily_budget_usd ? `${usd(s.budget.remaining_usd)} (${usd(s.budget.spent_usd)} counted)` : "–"],
      ["Budget resets", new Date(s.budget.reset_at).toISOString().replace(".000Z", "Z")],
      ["Limits kept in", s.backend],
    ];
    for (const [k, v] of rows) {
      const dt = document.createElement("dt");
      dt.textContent = k;
      const dd = document.createElement("dd");
      dd.textContent = v;
      dl.append(dt, dd);
    }
    document.body.dataset.identity = id;
  } catch (e) {
    if (e.status === 401) { showSignIn("Your session is over: sign in again."); return; }
    showError(e.message);
  }
}

// ---------------------------------------------------------------- start

async function start() {
  const today = new Date();
  const from = new Date(today);
  from.setUTCDate(from.getUTCDate() - 13);
  $("from").value = isoDay(from);
  $("to").value = isoDay(today);
  $("sign-in-form").addEventListener("submit", signIn);
  $("range-form").addEventListener("submit", (ev) => { ev.preventDefault(); load(); });
  $("sign-out").addEventListener("click", signOut);
  $("error-close").addEventListener("click", () => showError(""));
  try {
    const s = await call("/ops/session");
    if (s.signed_in) signedIn(s);
    else showSignIn("");
  } catch (e) {
    showSignIn(e.message);
  }
}

start();

// The dashboard's script: a few views over the /v1 JSON API, chosen by the URL's hash. The session cookie
// authenticates every request; changes also send the session's CSRF token (from the page's <meta>).
// Nothing here decides anything the API does not: it shows what /v1 answers and sends what people ask for.

const CSRF = document.querySelector('meta[name="csrf-token"]').content;
const view = document.getElementById("view");
const flashBox = document.getElementById("flash");

// What the current view started (polling timers, the log stream); stopped when the view changes.
let stops = [];
function onLeave(stop) { stops.push(stop); }
function leave() { for (const stop of stops) stop(); stops = []; }
function every(ms, fn) { const id = setInterval(fn, ms); onLeave(() => clearInterval(id)); }

/** Calls the API; answers the decoded JSON body, or throws an Error with the API's message. */
async function api(method, path, body) {
  const init = { method, headers: {}, credentials: "same-origin" };
  if (method !== "GET") init.headers["X-CSRF-Token"] = CSRF;
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch("/v1" + path, init);
  } catch (error) {
    // A network failure ("Failed to fetch"): a read is safe to try once more; a change is not.
    if (method !== "GET") throw error;
    await new Promise((resolve) => setTimeout(resolve, 500));
    response = await fetch("/v1" + path, init);
  }
  if (response.status === 401) {
    location.assign("/dashboard/sign-in");
    throw new Error("signed out");
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!response.ok) throw new Error((data && data.error) || `${response.status} ${response.statusText}`);
  return data;
}

/** Builds an element: h("td", {class: "x"}, "text", child). Text is always text, never HTML. */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

function flash(message, bad = false) {
  flashBox.textContent = message;
  flashBox.className = bad ? "bad" : "";
}

/** Runs a change, showing progress and its outcome in the flash line. */
async function change(what, fn) {
  flash(`${what}…`);
  try {
    const result = await fn();
    flash(`${what}: done.`);
    return result;
  } catch (error) {
    flash(`${what} failed: ${error.message}`, true);
    return undefined;
  }
}

const enc = encodeURIComponent;
const mib = (bytes) => `${Math.round(bytes / 1048576)} MiB`;
const when = (iso) => (iso ? new Date(iso).toLocaleString() : "—");
function age(iso) {
  let s = Math.max(0, Math.floor((Date.now() - Date.parse(iso)) / 1000));
  const d = Math.floor(s / 86400); s -= d * 86400;
  const hr = Math.floor(s / 3600); s -= hr * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  return d ? `${d}d ${hr}h` : hr ? `${hr}h ${m}m` : m ? `${m}m ${s}s` : `${s}s`;
}
function table(id, headings, rows) {
  return h("div", { class: "table-wrap" },
    h("table", { id }, h("thead", {}, h("tr", {}, headings.map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows)));
}
function replaceRows(id, rows) {
  const body = document.querySelector(`#${id} tbody`);
  if (body) body.replaceChildren(...rows);
}
/** "web: 2/3 running" per process type, from the formation and the instances. */
function counts(formation, instances) {
  return formation.map((line) => {
    const running = instances.filter((i) => i.type === line.type && i.state === "running").length;
    return `${line.type}: ${running}/${line.quantity}`;
  }).join(", ") || "—";
}

// ---- Apps list ----

async function appRow(app) {
  const [formation, instances, releases] = await Promise.all([
    api("GET", `/apps/${enc(app.name)}/formation`),
    api("GET", `/apps/${enc(app.name)}/instances`),
    api("GET", `/apps/${enc(app.name)}/releases`),
  ]);
  const state = app.stopped ? "stopped" : instances.some((i) => i.state === "running") ? "running"
    : app.release ? "idle" : "no release";
  return h("tr", { "data-app": app.name },
    h("td", {}, h("a", { href: `#/apps/${enc(app.name)}` }, app.name)),
    h("td", {}, h("a", { href: app.url }, app.url)),
    h("td", { class: `state-${state}` }, state),
    h("td", {}, app.release ? `v${app.release}` : "—"),
    h("td", { class: "counts" }, counts(formation, instances)),
    h("td", {}, releases.length ? when(releases[0].created_at) : "—"));
}

async function appsView() {
  const refresh = async () => {
    const apps = await api("GET", "/apps");
    const rows = await Promise.all(apps.map(appRow));
    replaceRows("apps", rows.length ? rows
      : [h("tr", {}, h("td", { colspan: 6 }, "No apps yet. ", h("a", { href: "#/new" }, "Create one.")))]);
  };
  view.replaceChildren(h("h1", {}, "Apps"),
    table("apps", ["Name", "URL", "State", "Release", "Instances", "Last deploy"], []));
  await refresh();
  every(3000, () => refresh().catch((e) => flash(e.message, true)));
}

// ---- Creating an app ----

function newAppView() {
  const name = h("input", { id: "new-app-name", type: "text", required: true, autocomplete: "off",
    pattern: "[a-z0-9][a-z0-9-]*", "aria-describedby": "new-app-hint" });
  const result = h("div", { id: "new-app-result" });
  const form = h("form", {
    onsubmit: async (event) => {
      event.preventDefault();
      const app = await change(`Creating ${name.value}`, () => api("POST", "/apps", { name: name.value.trim() }));
      if (!app) return;
      const remote = `${location.origin}/git/${app.name}.git`;
      result.replaceChildren(
        h("p", {}, "Created ", h("a", { href: `#/apps/${enc(app.name)}` }, app.name),
          ". Deploy it from your app's git repository:"),
        h("pre", { class: "commands", id: "git-commands" },
          `git remote add berth ${remote}\ngit push berth main`),
        h("p", { class: "hint" }, "git asks for a password: give your API token."));
    },
  }, h("label", { for: "new-app-name" }, "App name"), name,
    h("p", { class: "hint", id: "new-app-hint" }, "Lowercase letters, digits and dashes."),
    h("button", { type: "submit", id: "create-app" }, "Create app"));
  view.replaceChildren(h("h1", {}, "New app"), form, result);
  name.focus();
}

// ---- One app ----

function formationCard(app, line, reload) {
  const id = `scale-${line.type}`;
  const input = h("input", { id, type: "number", min: 0, max: 100, value: line.quantity });
  const scale = (quantity) => change(`Scaling ${line.type} to ${quantity}`, async () => {
    await api("PATCH", `/apps/${enc(app)}/formation`, { [line.type]: quantity });
    await reload();
  });
  return h("form", { class: "process", onsubmit: (e) => { e.preventDefault(); scale(Number(input.value)); } },
    h("label", { for: id }, `${line.type} instances`),
    h("div", { class: "row" },
      h("button", { type: "button", class: "secondary", id: `${id}-down`, "aria-label": `One fewer ${line.type}`,
        onclick: () => scale(Math.max(0, line.quantity - 1)) }, "−"),
      input,
      h("button", { type: "button", class: "secondary", id: `${id}-up`, "aria-label": `One more ${line.type}`,
        onclick: () => scale(line.quantity + 1) }, "+"),
      h("button", { type: "submit", id: `${id}-apply` }, "Scale")),
    h("p", { class: "hint" }, `${mib(line.memory_bytes)} memory each · `,
      h("span", { id: `count-${line.type}` }, "")));
}

function instanceRow(i) {
  return h("tr", { "data-instance": i.name },
    h("td", {}, i.name),
    h("td", { class: `state state-${i.state}` }, i.state),
    h("td", {}, `v${i.release}`),
    h("td", {}, i.node || "—"),
    h("td", {}, i.state === "running" ? age(i.created_at) : "—"),
    h("td", {}, i.restarts),
    h("td", {}, i.memory_bytes ? mib(i.memory_bytes) : "—"),
    h("td", {}, i.last_exit ? `${i.last_exit.reason} (${when(i.last_exit.at)})` : ""));
}

function releaseRow(app, r, current, reload) {
  const back = r.version === current ? h("span", { class: "muted" }, "current")
    : h("button", { type: "button", class: "secondary", id: `rollback-${r.version}`,
      onclick: async () => {
        if (!confirm(`Roll ${app} back to v${r.version}? This makes a new release from it.`)) return;
        await change(`Rolling back to v${r.version}`, () => api("POST", `/apps/${enc(app)}/rollback`,
          { version: r.version }));
        await reload();
      } }, `Roll back to v${r.version}`);
  return h("tr", { "data-release": r.version },
    h("td", {}, `v${r.version}`), h("td", {}, r.kind), h("td", {}, r.description),
    h("td", {}, r.created_by || "—"), h("td", {}, when(r.created_at)), h("td", {}, back));
}

function configRow(app, key, value, reload) {
  const shown = h("span", { class: "secret" }, "••••••");
  let revealed = false;
  const reveal = h("button", { type: "button", class: "secondary", "aria-label": `Reveal ${key}`,
    onclick: () => {
      revealed = !revealed;
      shown.textContent = revealed ? value : "••••••";
      shown.className = revealed ? "" : "secret";
      reveal.textContent = revealed ? "Hide" : "Reveal";
    } }, "Reveal");
  const edit = h("button", { type: "button", class: "secondary", "aria-label": `Edit ${key}`,
    onclick: () => {
      document.getElementById("config-key").value = key;
      const box = document.getElementById("config-value");
      box.value = value;
      box.focus();
    } }, "Edit");
  const remove = h("button", { type: "button", class: "danger", "aria-label": `Remove ${key}`,
    onclick: async () => {
      if (!confirm(`Remove ${key} from ${app}? This makes a new release.`)) return;
      await change(`Removing ${key}`, () => api("PATCH", `/apps/${enc(app)}/config`, { [key]: null }));
      await reload();
    } }, "Remove");
  return h("tr", { "data-config": key }, h("td", {}, h("code", {}, key)), h("td", {}, shown),
    h("td", {}, reveal, " ", edit, " ", remove));
}

function configForm(app, reload) {
  return h("form", { class: "inline", id: "config-form",
    onsubmit: async (e) => {
      e.preventDefault();
      const key = document.getElementById("config-key").value.trim();
      const value = document.getElementById("config-value").value;
      const done = await change(`Setting ${key}`, () => api("PATCH", `/apps/${enc(app)}/config`, { [key]: value }));
      if (done) e.target.reset();
      await reload();
    } },
  h("div", {}, h("label", { for: "config-key" }, "Name"), h("input", { id: "config-key", type: "text", required: true })),
  h("div", {}, h("label", { for: "config-value" }, "Value"), h("textarea", { id: "config-value", rows: 1 })),
  h("button", { type: "submit", id: "config-set" }, "Set"));
}

function domainSection(app, domains, certificates, reload) {
  const rows = domains.map((d) => h("tr", {}, h("td", {}, d.name), h("td", {}, when(d.created_at)),
    h("td", {}, h("button", { type: "button", class: "danger", "aria-label": `Remove ${d.name}`,
      onclick: async () => {
        if (!confirm(`Remove ${d.name} from ${app}?`)) return;
        await change(`Removing ${d.name}`, () => api("DELETE", `/apps/${enc(app)}/domains/${enc(d.name)}`));
        await reload();
      } }, "Remove"))));
  const certs = certificates.map((c) => h("tr", {}, h("td", {}, c.hosts.join(", ")),
    h("td", {}, when(c.not_after))));
  return [
    table("domains", ["Domain", "Added", ""], rows),
    h("form", { class: "inline", onsubmit: async (e) => {
      e.preventDefault();
      const name = document.getElementById("domain-name").value.trim();
      await change(`Adding ${name}`, () => api("POST", `/apps/${enc(app)}/domains`, { name }));
      await reload();
    } }, h("div", {}, h("label", { for: "domain-name" }, "Add a domain"),
      h("input", { id: "domain-name", type: "text", required: true, placeholder: "www.example.com" })),
    h("button", { type: "submit", id: "domain-add" }, "Add")),
    h("h3", {}, "Certificates"),
    certs.length ? table("certificates", ["Names", "Valid until"], certs)
      : h("p", { class: "muted" }, "None uploaded (berth certs add)."),
  ];
}

function logLine(line) {
  const at = new Date(line.at).toLocaleTimeString();
  const who = line.process ? `${line.source}[${line.process}]` : line.source;
  return `${at} ${who}: ${line.text}\n`;
}

/** Reads newline-delimited JSON log lines from a streaming response into `pre`, keeping the last 500. */
async function streamLogs(url, pre, signal) {
  const response = await fetch(url, { signal, credentials: "same-origin" });
  if (!response.ok) throw new Error(`logs: ${response.status}`);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let pending = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    pending += value;
    let end;
    while ((end = pending.indexOf("\n")) >= 0) {
      const text = pending.slice(0, end);
      pending = pending.slice(end + 1);
      if (!text || text === "{}") continue; // keep-alive
      const follow = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      pre.append(logLine(JSON.parse(text)));
      while (pre.childNodes.length > 500) pre.firstChild.remove();
      if (follow) pre.scrollTop = pre.scrollHeight;
    }
  }
}

async function appView(name) {
  const base = `/apps/${enc(name)}`;
  const app = await api("GET", base);
  const sections = {
    formation: h("div", { class: "formation", id: "formation" }),
    instances: table("instances", ["Instance", "State", "Release", "Node", "Uptime", "Restarts", "Memory",
      "Last exit"], []),
    releases: h("div", { id: "releases-section" }),
    config: h("div", { id: "config-section" }),
    domains: h("div", { id: "domains-section" }),
  };
  const summary = h("p", { id: "app-summary" });
  const actions = h("div", { class: "inline", id: "app-actions" });
  const log = h("pre", { class: "log", id: "log", tabindex: 0, "aria-label": "Live log", "aria-live": "off" });
  const builds = h("pre", { class: "log", id: "build-log", tabindex: 0, "aria-label": "Build output" });

  const loadLive = async () => {
    const [info, formation, instances] = await Promise.all([
      api("GET", base), api("GET", `${base}/formation`), api("GET", `${base}/instances`)]);
    summary.replaceChildren(h("a", { href: info.url }, info.url), " · ",
      info.release ? `release v${info.release}` : "no release yet", info.stopped ? " · stopped" : "");
    replaceRows("instances", instances.length ? instances.map(instanceRow)
      : [h("tr", {}, h("td", { colspan: 8, class: "muted" }, "No instances."))]);
    for (const line of formation) {
      const count = document.getElementById(`count-${line.type}`);
      if (count) count.textContent = counts([line], instances).replace(/^[^:]*: /, "") + " running";
    }
    return [info, formation];
  };
  // Stop or start, and restart: each asks first, and the API answers once it is done (or why not).
  const loadActions = async () => {
    const info = await api("GET", base);
    const action = (verb, label, body) => h("button", {
      type: "button", id: `app-${verb}`, class: verb === "stop" ? "danger" : "secondary",
      onclick: async () => {
        if (!confirm(`${label} ${name}?`)) return;
        await change(`${label} ${name}`, async () => {
          const outcome = await api("POST", `${base}/${verb}`, body);
          if (outcome && outcome.done === false) throw new Error(outcome.message);
        });
        await Promise.all([loadActions(), loadLive()]);
      } }, label);
    actions.replaceChildren(info.stopped ? action("start", "Start") : action("stop", "Stop"),
      action("restart", "Restart", {}));
  };
  const loadFormation = async () => {
    const [, formation] = await loadLive();
    sections.formation.replaceChildren(...(formation.length
      ? formation.map((line) => formationCard(name, line, loadFormation))
      : [h("p", { class: "muted" }, "Push a release to scale its processes.")]));
    await loadLive();
  };
  const loadReleases = async () => {
    const [info, releases] = await Promise.all([api("GET", base), api("GET", `${base}/releases`)]);
    sections.releases.replaceChildren(table("releases", ["Version", "Kind", "Description", "By", "When", ""],
      releases.map((r) => releaseRow(name, r, info.release, loadAll))));
  };
  const loadConfig = async () => {
    const vars = await api("GET", `${base}/config`);
    const rows = Object.entries(vars).map(([k, v]) => configRow(name, k, v, loadAll));
    sections.config.replaceChildren(table("config", ["Name", "Value", ""], rows), configForm(name, loadAll));
  };
  const loadDomains = async () => {
    const [domains, certs] = await Promise.all([api("GET", `${base}/domains`), api("GET", `${base}/certificates`)]);
    sections.domains.replaceChildren(...domainSection(name, domains, certs, loadDomains));
  };
  const loadBuilds = async () => {
    const response = await fetch(`/v1${base}/logs?source=berth&ps=build&lines=400`, { credentials: "same-origin" });
    const lines = (await response.text()).split("\n").filter((l) => l && l !== "{}").map((l) => logLine(JSON.parse(l)));
    builds.textContent = lines.join("") || "No build output kept.";
    builds.scrollTop = builds.scrollHeight;
  };
  const loadAll = () => Promise.all([loadFormation(), loadReleases(), loadConfig(), loadBuilds()]);

  view.replaceChildren(
    h("h1", { id: "app-title" }, app.name), summary, actions,
    h("h2", {}, "Formation"), sections.formation,
    h("h2", {}, "Instances"), sections.instances,
    h("h2", {}, "Releases"), sections.releases,
    h("h2", {}, "Config vars"), sections.config,
    h("h2", {}, "Domains"), sections.domains,
    h("h2", {}, "Log"), log,
    h("h2", {}, "Recent builds"), h("button", { type: "button", class: "secondary", onclick: loadBuilds },
      "Refresh build output"), builds);
  await Promise.all([loadAll(), loadDomains(), loadActions()]);
  every(2000, () => loadLive().catch((e) => flash(e.message, true)));

  const abort = new AbortController();
  onLeave(() => abort.abort());
  streamLogs(`/v1${base}/logs?follow=true&lines=100`, log, abort.signal).catch((e) => {
    if (!abort.signal.aborted) log.append(`(log stream ended: ${e.message})\n`);
  });
}

// ---- Admin views (admin accounts only; the API refuses anyone else, and the page shows its answer) ----

const cores = (millicores) => `${(millicores / 1000).toFixed(millicores % 1000 ? 2 : 0)} CPU`;

/** A labelled bar with its figures as text: "memory: 512 MiB of 2048 MiB (25%)". Not colour alone. */
function bar(id, what, used, total, unit) {
  const percent = total ? Math.round((used / total) * 100) : 0;
  const figures = `${unit(used)} of ${unit(total)} (${percent}%)`;
  return h("div", { class: "bar" },
    h("label", { for: id }, what),
    h("meter", { id, min: 0, max: total || 1, value: Math.min(used, total || 1), high: (total || 1) * 0.85,
      "aria-describedby": `${id}-figures` }, figures),
    h("span", { class: "figures", id: `${id}-figures` }, figures));
}

/** A button that asks first (when `question` is given), calls the API, reports in the flash line, reloads. */
function adminButton(id, label, kind, question, what, call, reload) {
  return h("button", { type: "button", id, class: kind, onclick: async () => {
    if (question && !confirm(question)) return;
    await change(what, call);
    await reload();
  } }, label);
}

function nodeRow(node, reload) {
  const name = node.name;
  const path = `/admin/nodes/${enc(name)}`;
  const buttons = [
    node.state === "ready"
      ? adminButton(`cordon-${name}`, "Cordon", "secondary", null, `Cordoning ${name}`,
        () => api("POST", `${path}/cordon`), reload)
      : adminButton(`uncordon-${name}`, "Uncordon", "secondary", null, `Uncordoning ${name}`,
        () => api("POST", `${path}/uncordon`), reload),
    node.state === "draining" ? null
      : adminButton(`drain-${name}`, "Drain", "danger",
        `Drain ${name}? Its ${node.instances} instance(s) move to other nodes and it takes no new ones.`,
        `Draining ${name}`, () => api("POST", `${path}/drain`), reload),
  ];
  const labels = Object.entries(node.labels || {}).map(([k, v]) => h("code", { class: "label" }, `${k}=${v}`));
  return h("tr", { "data-node": name },
    h("th", { scope: "row" }, name, h("div", { class: "muted" }, node.id)),
    h("td", { class: "bars" },
      bar(`mem-${name}`, "Memory", node.allocated_memory_bytes, node.memory_bytes, mib),
      bar(`cpu-${name}`, "CPU", node.allocated_cpu_millicores, node.cpu_millicores, cores)),
    h("td", {}, node.instances),
    h("td", { class: `node-state node-${node.state}` }, node.state),
    h("td", { class: `health-${node.health}` }, node.health),
    h("td", {}, node.last_heartbeat_at ? `${age(node.last_heartbeat_at)} ago` : "—"),
    h("td", {}, node.agent_version || "—"),
    h("td", {}, labels.length ? labels : "—"),
    h("td", { class: "actions" }, buttons));
}

async function adminNodesView() {
  const refresh = async () => {
    const nodes = await api("GET", "/admin/nodes");
    replaceRows("nodes", nodes.length ? nodes.map((n) => nodeRow(n, refresh))
      : [h("tr", {}, h("td", { colspan: 9, class: "muted" }, "No nodes have registered."))]);
  };
  view.replaceChildren(h("h1", {}, "Nodes"),
    h("p", { class: "hint" }, "Allocation is what the instances placed on a node reserve. Cordon stops new "
      + "placements; drain also moves what runs there elsewhere."),
    table("nodes", ["Node", "Allocated", "Instances", "State", "Health", "Last heartbeat", "Version", "Labels",
      ""], []));
  await refresh();
  every(5000, () => refresh().catch((e) => flash(e.message, true)));
}

const QUOTAS = [
  ["apps", "Apps", String],
  ["instances", "Instances", String],
  ["memory_bytes", "Memory", mib],
  ["builds", "Builds at once", String],
];

function accountRow(account, reload) {
  const name = account.name;
  const usage = QUOTAS.map(([key, label, unit]) => h("div", {}, `${label}: ${unit(account.usage[key])} of `
    + `${unit(account.limits[key])}${account.overrides[key] === null || account.overrides[key] === undefined
      ? "" : " (set)"}`));
  const path = `/admin/accounts/${enc(name)}`;
  const suspend = account.suspended
    ? adminButton(`unsuspend-${name}`, "Unsuspend", "secondary", `Unsuspend ${name}? Its apps can run again.`,
      `Unsuspending ${name}`, () => api("POST", `${path}/unsuspend`), reload)
    : adminButton(`suspend-${name}`, "Suspend", "danger",
      `Suspend ${name}? Its apps stop and its tokens are refused until unsuspended.`,
      `Suspending ${name}`, () => api("POST", `${path}/suspend`), reload);
  const edit = h("button", { type: "button", class: "secondary", id: `quotas-${name}`,
    "aria-label": `Set quotas of ${name}`, onclick: () => quotaForm(account, reload) }, "Set quotas");
  return h("tr", { "data-account": name },
    h("th", { scope: "row" }, name, account.is_admin ? h("div", { class: "muted" }, "admin") : null),
    h("td", { class: account.suspended ? "state-crashed" : "state-running" },
      account.suspended ? "suspended" : "active"),
    h("td", { class: "usage" }, usage),
    h("td", {}, when(account.created_at)),
    h("td", { class: "actions" }, edit, " ", suspend));
}

/** The form to set one account's quotas; an empty field means the platform's default. */
function quotaForm(account, reload) {
  const box = document.getElementById("quota-form");
  const fields = QUOTAS.map(([key, label]) => {
    const id = `quota-${key}`;
    const set = account.overrides[key];
    const value = set === null || set === undefined ? "" : key === "memory_bytes" ? Math.round(set / 1048576) : set;
    return h("div", {}, h("label", { for: id }, key === "memory_bytes" ? "Memory (MiB)" : label),
      h("input", { id, type: "number", min: 0, value, placeholder: "default",
        "aria-describedby": "quota-hint" }));
  });
  box.replaceChildren(h("h2", { id: "quota-title" }, `Quotas of ${account.name}`),
    h("form", { class: "inline", id: "quotas", onsubmit: async (e) => {
      e.preventDefault();
      const body = {};
      for (const [key] of QUOTAS) {
        const raw = document.getElementById(`quota-${key}`).value.trim();
        body[key] = raw === "" ? null : key === "memory_bytes" ? Number(raw) * 1048576 : Number(raw);
      }
      const done = await change(`Setting the quotas of ${account.name}`,
        () => api("PUT", `/admin/accounts/${enc(account.name)}/quotas`, body));
      if (done) box.replaceChildren();
      await reload();
    } }, fields, h("button", { type: "submit", id: "quotas-save" }, "Save quotas"),
    h("button", { type: "button", class: "secondary", onclick: () => box.replaceChildren() }, "Cancel")),
    h("p", { class: "hint", id: "quota-hint" }, "Leave a field empty for the platform's default."));
  document.getElementById("quota-apps").focus();
}

async function adminAccountsView() {
  const refresh = async () => {
    const accounts = await api("GET", "/admin/accounts");
    replaceRows("accounts", accounts.map((a) => accountRow(a, refresh)));
  };
  view.replaceChildren(h("h1", {}, "Accounts"),
    table("accounts", ["Account", "Status", "Usage of quota", "Created", ""], []),
    h("div", { id: "quota-form" }));
  await refresh();
}

function adminAppRow(app, reload) {
  const stop = app.stopped ? h("span", { class: "muted" }, "stopped")
    : adminButton(`stop-${app.name}`, "Stop", "danger", `Stop ${app.name} of ${app.owner}? Its instances stop.`,
      `Stopping ${app.name}`, async () => {
        const outcome = await api("POST", `/admin/apps/${enc(app.name)}/stop`);
        if (outcome && outcome.done === false) throw new Error(outcome.message);
      }, reload);
  return h("tr", { "data-app": app.name },
    h("th", { scope: "row" }, app.name), h("td", {}, app.owner),
    h("td", { class: app.stopped ? "" : "state-running" }, app.stopped ? "stopped" : "running"),
    h("td", {}, when(app.created_at)), h("td", { class: "actions" }, stop));
}

async function adminAppsView(query) {
  const search = h("input", { id: "app-search", type: "search", value: query, autocomplete: "off",
    "aria-describedby": "app-search-hint" });
  let latest = 0; // a slower, older search never overwrites a newer one's answer
  const refresh = async () => {
    const mine = ++latest;
    const q = search.value.trim();
    const apps = await api("GET", `/admin/apps${q ? `?q=${enc(q)}` : ""}`);
    if (mine !== latest) return;
    replaceRows("all-apps", apps.length ? apps.map((a) => adminAppRow(a, refresh))
      : [h("tr", {}, h("td", { colspan: 5, class: "muted" }, q ? `No app matches “${q}”.` : "No apps."))]);
  };
  view.replaceChildren(h("h1", {}, "All apps"),
    h("form", { class: "inline", role: "search", onsubmit: (e) => {
      e.preventDefault();
      history.replaceState(null, "", `#/admin/apps${search.value.trim() ? `?q=${enc(search.value.trim())}` : ""}`);
      refresh().catch((error) => flash(error.message, true));
    } }, h("div", {}, h("label", { for: "app-search" }, "Search apps"), search,
      h("p", { class: "hint", id: "app-search-hint" }, "Part of an app's or its owner's name.")),
    h("button", { type: "submit", id: "app-search-go" }, "Search")),
    table("all-apps", ["App", "Owner", "State", "Created", ""], []));
  await refresh();
}

async function adminAuditView(account) {
  const filter = h("input", { id: "audit-account", type: "text", value: account, autocomplete: "off" });
  let latest = 0; // a slower, older query never overwrites a newer one's answer
  const refresh = async () => {
    const mine = ++latest;
    const who = filter.value.trim();
    const entries = await api("GET", `/admin/audit?limit=200${who ? `&account=${enc(who)}` : ""}`);
    if (mine !== latest) return;
    replaceRows("audit", entries.length ? entries.map((e) => h("tr", {},
      h("td", {}, when(e.at)), h("td", {}, e.account), h("td", {}, e.token_scope), h("td", {}, h("code", {}, e.action)),
      h("td", {}, e.target || "—"), h("td", { class: e.status >= 400 ? "state-crashed" : "" }, e.status)))
      : [h("tr", {}, h("td", { colspan: 6, class: "muted" }, "No entries."))]);
  };
  view.replaceChildren(h("h1", {}, "Audit log"),
    h("p", { class: "hint" }, "Every change made through the API, newest first."),
    h("form", { class: "inline", onsubmit: (e) => {
      e.preventDefault();
      history.replaceState(null, "", `#/admin/audit${filter.value.trim() ? `?account=${enc(filter.value.trim())}` : ""}`);
      refresh().catch((error) => flash(error.message, true));
    } }, h("div", {}, h("label", { for: "audit-account" }, "Account"), filter),
    h("button", { type: "submit", id: "audit-filter" }, "Filter")),
    table("audit", ["When", "Account", "Token", "Action", "Target", "Status"], []));
  await refresh();
}

/** The value of `key` in a hash's query ("#/admin/apps?q=x"), or "". */
function hashParam(query, key) {
  return new URLSearchParams(query || "").get(key) || "";
}

/** Shows the admin links when the signed-in account is an admin; others never see them. */
async function adminNav() {
  const me = await api("GET", "/account");
  const nav = document.getElementById("admin-nav");
  nav.dataset.checked = "true"; // the browser test waits for this before asserting what non-admins see
  if (!me.is_admin) return;
  nav.replaceChildren(...[["nodes", "Nodes"], ["accounts", "Accounts"], ["apps", "All apps"], ["audit", "Audit log"]]
    .map(([path, label]) => h("a", { href: `#/admin/${path}`, id: `admin-nav-${path}` }, label)));
  nav.hidden = false;
}

// ---- Routing ----

// Each route: a pattern over the hash and the view it shows. The "#/admin/..." views are listed in #admin-nav
// for admin accounts only; anyone else who opens one sees the API's refusal.
const routes = [
  [/^#?\/?$/, () => appsView()],
  [/^#\/new$/, () => newAppView()],
  [/^#\/apps\/([^/]+)$/, (m) => appView(decodeURIComponent(m[1]))],
  [/^#\/admin\/nodes$/, () => adminNodesView()],
  [/^#\/admin\/accounts$/, () => adminAccountsView()],
  [/^#\/admin\/apps(?:\?(.*))?$/, (m) => adminAppsView(hashParam(m[1], "q"))],
  [/^#\/admin\/audit(?:\?(.*))?$/, (m) => adminAuditView(hashParam(m[1], "account"))],
];

async function show() {
  leave();
  flash("");
  const hash = location.hash;
  for (const [pattern, render] of routes) {
    const match = hash.match(pattern);
    if (!match) continue;
    try {
      await render(match);
    } catch (error) {
      view.replaceChildren(h("h1", {}, "Not available"), h("p", { class: "error", id: "view-error" }, error.message),
        h("p", {}, h("a", { href: "#/" }, "Back to your apps")));
    }
    view.focus();
    return;
  }
  view.replaceChildren(h("h1", {}, "Not found"), h("p", {}, h("a", { href: "#/" }, "Back to your apps")));
}

window.addEventListener("hashchange", show);
show();
adminNav().catch(() => {});

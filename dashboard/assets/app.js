// rcompose dashboard: one page over the server's JSON API (/api/...). Hand-written, no
// framework: views are rebuilt from data every few seconds; every text from the engine is
// put in the page with textContent (never as HTML), so a container name or a log line can
// never inject markup.
"use strict";

// The token comes with the page when it was opened with the printed address (?token=);
// the tab keeps it across reloads. Without it the page can look but not act.
const TOKEN = document.querySelector('meta[name="rcompose-token"]').content
  || sessionStorage.getItem("rcompose-token") || "";
if (TOKEN) sessionStorage.setItem("rcompose-token", TOKEN);
const REFRESH_MS = 2000;
const SVG = "http://www.w3.org/2000/svg";

// The token came in the address (?token=): keep it out of the history and the address bar.
if (location.search.includes("token=")) {
  history.replaceState(null, "", location.pathname + location.hash);
}

// ---- helpers ---------------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function headers() {
  return { "X-Rcompose-Token": TOKEN };
}

async function api(path) {
  const r = await fetch(path, { headers: headers(), cache: "no-store" });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.message || r.status + " " + r.statusText);
  return body;
}

async function post(path) {
  const r = await fetch(path, { method: "POST", headers: headers() });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.message || r.status + " " + r.statusText);
  return body;
}

function size(n) {
  if (n === null || n === undefined) return "–";
  const u = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
  return (i === 0 ? n : n.toFixed(n < 10 ? 2 : 1)) + " " + u[i];
}

function duration(s) {
  if (s === null || s === undefined) return "–";
  if (s < 60) return s + "s";
  if (s < 3600) return Math.floor(s / 60) + "m " + (s % 60) + "s";
  if (s < 86400) return Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m";
  return Math.floor(s / 86400) + "d " + Math.floor((s % 86400) / 3600) + "h";
}

function badge(state) {
  return el("span", { class: "state " + state, text: state });
}

// A published port as a link: an address bound to every interface is reached through the
// host name this page was opened with.
function portLinks(ports) {
  return (ports || []).map((p) => {
    const any = p.host_ip === "0.0.0.0" || p.host_ip === "::";
    let host = any ? location.hostname : p.host_ip;
    if (host.includes(":") && !host.startsWith("[")) host = "[" + host + "]";
    const label = p.host_ip + ":" + p.host_port + "→" + p.container_port + "/" + p.proto;
    if (p.proto !== "tcp") return el("div", { class: "mono", text: label });
    return el("div", {}, el("a", {
      class: "mono", href: "http://" + host + ":" + p.host_port + "/",
      target: "_blank", rel: "noopener noreferrer", text: label,
    }));
  });
}

function toast(msg, error) {
  const t = document.getElementById("toast");
  t.textContent = msg;
  t.className = error ? "error" : "";
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 4000);
}

// Asks in the page's own dialog; resolves true on Confirm.
function confirmAction(text) {
  const d = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = text;
  d.returnValue = "";
  d.showModal();
  return new Promise((resolve) => {
    d.addEventListener("close", () => resolve(d.returnValue === "ok"), { once: true });
  });
}

const VERBS = {
  start: "Start", stop: "Stop", restart: "Restart", remove: "Remove",
};

async function act(c, action) {
  const what = action === "remove"
    ? "Remove container " + c.name + "? A running container is stopped first; its data outside volumes is lost."
    : VERBS[action] + " container " + c.name + "?";
  if (!(await confirmAction(what))) return;
  setStatus(VERBS[action] + " " + c.name + "…");
  try {
    await post("/api/containers/" + encodeURIComponent(c.id) + "/" + action);
    toast(VERBS[action] + ": " + c.name);
  } catch (e) {
    toast(VERBS[action] + " " + c.name + " failed: " + e.message, true);
  }
  refresh();
}

function actions(c) {
  const running = c.state === "running" || c.state === "paused" || c.state === "restarting";
  const b = (action, enabled, cls) => el("button", {
    "data-action": action, class: cls, disabled: !enabled || !TOKEN,
    title: TOKEN ? undefined : "Read-only: open the address with ?token= that rcompose dashboard printed",
    onclick: () => act(c, action), text: VERBS[action],
  });
  return [
    b("start", !running), b("stop", running), b("restart", true),
    b("remove", true, "danger"),
  ];
}

function setStatus(text) {
  document.getElementById("status").textContent = text;
}

// ---- views -----------------------------------------------------------------------------

function containerTable(list) {
  const rows = list.map((c) => {
    const memPct = c.mem_limit ? Math.min(100, (100 * c.mem_usage) / c.mem_limit) : 0;
    return el("tr", { "data-name": c.name, "data-id": c.id },
      el("td", {}, el("a", { href: "#/logs/" + encodeURIComponent(c.id), class: "name", text: c.name }),
        c.project ? el("div", { class: "muted", text: c.project + " / " + c.service }) : null),
      el("td", {}, badge(c.state), c.health ? [" ", badge(c.health)] : null),
      el("td", { class: "muted", text: c.status }),
      el("td", { class: "mono", text: c.image }),
      el("td", {}, portLinks(c.ports)),
      el("td", { class: "num", text: duration(c.uptime) }),
      el("td", { class: "num", text: c.cpu_percent === null ? "–" : c.cpu_percent.toFixed(1) + " %" }),
      el("td", { class: "num" }, c.mem_usage === null ? "–" : [
        el("span", { class: "bar" }, (() => { const s = el("span"); s.style.width = memPct + "%"; return s; })()),
        size(c.mem_usage) + " / " + size(c.mem_limit),
      ]),
      el("td", { class: "actions" }, actions(c)));
  });
  return el("table", { id: "containers" },
    el("thead", {}, el("tr", {}, ["Name", "State", "Status", "Image", "Ports", "Uptime", "CPU", "Memory", ""]
      .map((h) => el("th", { text: h })))),
    el("tbody", {}, rows.length ? rows : el("tr", {}, el("td", { colspan: 9, class: "muted", text: "No containers." }))));
}

async function viewContainers() {
  const list = await api("/api/containers");
  return [el("h1", { text: "Containers" }), containerTable(list)];
}

// Services placed in columns by dependency depth (what a service depends on stands to its
// left), arrows from a service to each of its dependencies.
function dependencyGraph(project) {
  const svcs = project.services;
  const byName = Object.fromEntries(svcs.map((s) => [s.name, s]));
  const depth = {};
  const depthOf = (name, seen) => {
    if (depth[name] !== undefined) return depth[name];
    if (seen.has(name)) return 0; // a cycle cannot be up; do not loop on one anyway
    seen.add(name);
    const deps = (byName[name] ? byName[name].depends_on : []).filter(([d]) => byName[d]);
    const d = deps.length ? 1 + Math.max(...deps.map(([x]) => depthOf(x, seen))) : 0;
    depth[name] = d;
    return d;
  };
  svcs.forEach((s) => depthOf(s.name, new Set()));
  const columns = [];
  svcs.forEach((s) => { (columns[depth[s.name]] = columns[depth[s.name]] || []).push(s); });
  const W = 150, H = 46, GX = 90, GY = 26, PAD = 20;
  // An edge that skips columns arcs above the nodes between; leave room for the highest arc.
  let span = 1;
  svcs.forEach((s) => s.depends_on.forEach(([d]) => {
    if (depth[d] !== undefined) span = Math.max(span, depth[s.name] - depth[d]);
  }));
  const ARC = 22, TOP = PAD + (span - 1) * ARC + 6;
  const pos = {};
  columns.forEach((col, i) => col.forEach((s, j) => {
    pos[s.name] = { x: PAD + i * (W + GX), y: TOP + j * (H + GY) };
  }));
  const width = PAD * 2 + columns.length * W + (columns.length - 1) * GX;
  const height = TOP + PAD + Math.max(...columns.map((c) => c.length)) * (H + GY) - GY;
  const g = svg("svg", { class: "graph", width, height, viewBox: "0 0 " + width + " " + height, "data-project": project.name });
  const defs = svg("defs");
  const marker = svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" });
  marker.append(svg("path", { d: "M0,0 L10,5 L0,10 z", fill: "#8c959f" }));
  defs.append(marker);
  g.append(defs);
  const colour = { running: "#1a7f37", exited: "#8c959f", partial: "#bf8700", created: "#bf8700", dead: "#cf222e" };
  for (const s of svcs) {
    for (const [dep, cond] of s.depends_on) {
      if (!pos[dep]) continue;
      const a = pos[s.name], b = pos[dep];
      const skip = depth[s.name] - depth[dep];
      let d, lx, ly;
      if (skip > 1 || a.x <= b.x) {
        // Out of the top of the dependent, over the columns between, into the dependency's top.
        const x1 = a.x + W / 3, y1 = a.y, x2 = b.x + (2 * W) / 3, y2 = b.y;
        const top = Math.min(y1, y2) - (skip - 1) * ARC - 6;
        d = `M${x1},${y1} C${x1},${top} ${x2},${top} ${x2},${y2}`;
        // The curve's highest point is 3/4 of the way up to its control points.
        lx = (x1 + x2) / 2; ly = 0.125 * (y1 + y2) + 0.75 * top - 4;
      } else {
        const x1 = a.x, y1 = a.y + H / 2, x2 = b.x + W, y2 = b.y + H / 2;
        const mx = (x1 + x2) / 2;
        d = `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`;
        lx = mx; ly = (y1 + y2) / 2 - 5;
      }
      g.append(svg("path", { class: "edge", d, "marker-end": "url(#arrow)" }));
      g.append(svg("text", { class: "cond", x: lx, y: ly, "text-anchor": "middle" }, cond.replace("service_", "")));
    }
  }
  for (const s of svcs) {
    const p = pos[s.name];
    const stroke = s.health === "unhealthy" ? "#cf222e" : (colour[s.state] || "#8c959f");
    const node = svg("g", { "data-service": s.name });
    node.append(svg("rect", { x: p.x, y: p.y, width: W, height: H, rx: 8, fill: "#fff", stroke }));
    node.append(svg("text", { x: p.x + 12, y: p.y + 19, "font-weight": 600 }, s.name));
    node.append(svg("text", { x: p.x + 12, y: p.y + 36, fill: stroke }, s.state + (s.health ? " · " + s.health : "")));
    g.append(node);
  }
  return g;
}

function projectCard(p) {
  const rows = p.services.map((s) => el("tr", { "data-service": s.name },
    el("td", { text: s.name }),
    el("td", {}, badge(s.state), s.health ? [" ", badge(s.health)] : null),
    el("td", {}, portLinks(s.ports)),
    el("td", { class: "mono", text: s.containers.join(", ") }),
    el("td", { class: "muted", text: s.depends_on.map(([d, c]) => d + " (" + c.replace("service_", "") + ")").join(", ") || "–" })));
  return el("div", { class: "card", "data-project": p.name },
    el("h2", {}, el("a", { href: "#/project/" + encodeURIComponent(p.name), text: p.name })),
    p.working_dir ? el("div", { class: "muted mono", text: p.working_dir }) : null,
    el("table", {},
      el("thead", {}, el("tr", {}, ["Service", "State", "Ports", "Containers", "Depends on"].map((h) => el("th", { text: h })))),
      el("tbody", {}, rows)),
    el("h3", { text: "Dependencies" }),
    el("div", { class: "graph-box" }, dependencyGraph(p)));
}

async function viewProjects() {
  const list = await api("/api/projects");
  if (!list.length) return [el("h1", { text: "Projects" }), el("p", { class: "muted", text: "No compose projects: `rcompose up -d` in a project directory." })];
  return [el("h1", { text: "Projects" }), list.map(projectCard)];
}

async function viewProject(name) {
  const [projects, containers] = await Promise.all([api("/api/projects"), api("/api/containers")]);
  const p = projects.find((x) => x.name === name);
  if (!p) return [el("h1", { text: "Project " + name }), el("p", { class: "muted", text: "No containers of this project." })];
  return [el("h1", { text: "Project " + name }), projectCard(p),
    containerTable(containers.filter((c) => c.project === name))];
}

async function viewImages() {
  const list = await api("/api/images");
  return [el("h1", { text: "Images" }), el("table", { id: "images" },
    el("thead", {}, el("tr", {}, ["Tags", "ID", "Size", "Created", "Used by"].map((h) => el("th", { text: h })))),
    el("tbody", {}, list.map((i) => el("tr", {},
      el("td", { class: "tags" }, (i.tags.length ? i.tags : ["<none>"]).map((t) => el("span", { class: "mono", text: t }))),
      el("td", { class: "mono", text: i.short_id }),
      el("td", { class: "num", text: size(i.size) }),
      el("td", { class: "muted", text: i.created || "–" }),
      el("td", { text: i.used_by.join(", ") || "–" })))))];
}

async function viewNetworks() {
  const list = await api("/api/networks");
  return [el("h1", { text: "Networks" }), el("table", { id: "networks" },
    el("thead", {}, el("tr", {}, ["Name", "Driver", "Subnet", "Gateway", "Project", "Members"].map((h) => el("th", { text: h })))),
    el("tbody", {}, list.map((n) => el("tr", {},
      el("td", { text: n.name }),
      el("td", { text: n.driver + (n.internal ? " (internal)" : "") }),
      el("td", { class: "mono", text: n.subnet + (n.subnet6 ? ", " + n.subnet6 : "") }),
      el("td", { class: "mono", text: n.gateway }),
      el("td", { text: n.project || "–" }),
      el("td", {}, n.members.length ? n.members.map((m) => el("div", { class: "mono", text: m.name + " " + m.ipv4 })) : "–")))))];
}

async function viewVolumes() {
  const list = await api("/api/volumes");
  return [el("h1", { text: "Volumes" }), el("table", { id: "volumes" },
    el("thead", {}, el("tr", {}, ["Name", "Driver", "Size", "Project", "Used by", "Mountpoint"].map((h) => el("th", { text: h })))),
    el("tbody", {}, list.map((v) => el("tr", {},
      el("td", { class: "mono", text: v.name }),
      el("td", { text: v.driver }),
      el("td", { class: "num", text: size(v.size) }),
      el("td", { text: v.project || "–" }),
      el("td", { text: v.used_by.join(", ") || "–" }),
      el("td", { class: "mono muted", text: v.mountpoint })))))];
}

// ---- logs: server-sent events read with fetch, so the token goes in a header ------------

let logAbort = null;

function stopLogs() {
  if (logAbort) logAbort.abort();
  logAbort = null;
}

async function followLogs(id, box) {
  stopLogs();
  const ctl = new AbortController();
  logAbort = ctl;
  const append = (node) => {
    const atEnd = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
    box.append(node);
    if (atEnd) box.scrollTop = box.scrollHeight;
  };
  const onEvent = (raw) => {
    let name = "message", data = "";
    for (const line of raw.split("\n")) {
      if (line.startsWith("event:")) name = line.slice(6).trim();
      else if (line.startsWith("data:")) data += line.slice(5).replace(/^ /, "");
    }
    if (!data) return;
    if (name === "end") { append(el("div", { class: "end", text: "— container removed —" })); return; }
    const e = JSON.parse(data);
    append(el("div", { class: "line " + e.stream },
      el("span", { class: "t", text: e.time.replace("T", " ").slice(0, 19) }), e.line));
  };
  try {
    const r = await fetch("/api/containers/" + encodeURIComponent(id) + "/logs", { headers: headers(), signal: ctl.signal });
    if (!r.ok) {
      const body = await r.json().catch(() => ({}));
      append(el("div", { class: "end", text: body.message || r.statusText }));
      return;
    }
    const reader = r.body.getReader();
    const dec = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        onEvent(buf.slice(0, i));
        buf = buf.slice(i + 2);
      }
    }
  } catch (e) {
    if (!ctl.signal.aborted) append(el("div", { class: "end", text: "log stream ended: " + e.message }));
    return;
  }
  // The server closed the stream (a restart of the dashboard): follow again.
  if (!ctl.signal.aborted) setTimeout(() => { if (logAbort === ctl) followLogs(id, box); }, 2000);
}

async function viewLogs(id) {
  const list = await api("/api/containers");
  const c = list.find((x) => x.id === id);
  if (!c) return [el("h1", { text: "Logs" }), el("p", { class: "muted", text: "No such container." })];
  const box = el("div", { id: "log", "data-id": id });
  followLogs(id, box);
  return [el("h1", {}, "Logs of ", el("span", { class: "mono", text: c.name })),
    el("div", { class: "card", id: "log-head" }, containerTable([c])), box];
}

// The header row above the log follows the container's state; the log itself streams.
async function refreshLogHead(id) {
  const list = await api("/api/containers");
  const c = list.find((x) => x.id === id);
  const head = document.getElementById("log-head");
  if (head && c) head.replaceChildren(containerTable([c]));
}

// ---- routing ---------------------------------------------------------------------------

function parseHash() {
  const [, view = "containers", arg] = (location.hash || "#/containers").split("/");
  return { view, arg: arg ? decodeURIComponent(arg) : undefined };
}

let timer = null;
let rendering = false;

async function render(full) {
  if (rendering) return;
  rendering = true;
  const { view, arg } = parseHash();
  for (const a of document.querySelectorAll("nav a")) {
    const tab = { project: "projects", logs: "containers" }[view] || view;
    a.classList.toggle("active", a.dataset.view === tab);
  }
  const main = document.getElementById("main");
  try {
    if (view === "logs") {
      if (full || !document.getElementById("log")) main.replaceChildren(...await viewLogs(arg));
      else await refreshLogHead(arg);
    } else {
      stopLogs();
      const views = { containers: viewContainers, projects: viewProjects, project: () => viewProject(arg), images: viewImages, networks: viewNetworks, volumes: viewVolumes };
      const nodes = await (views[view] || viewContainers)();
      // A dialog open over the page keeps the rows it was opened from.
      if (!document.getElementById("confirm").open) main.replaceChildren(...[nodes].flat(2));
    }
    setStatus("updated " + new Date().toLocaleTimeString());
  } catch (e) {
    setStatus("error: " + e.message);
  } finally {
    rendering = false;
  }
}

function refresh() {
  render(false);
}

window.addEventListener("hashchange", () => render(true));
render(true);
timer = setInterval(refresh, REFRESH_MS);

// Rabble's UI: pages are rendered by the hub; this keeps them live (a catalog change
// re-fetches the page's <main>), sends forms to the API, streams logs, keeps node
// charts in the browser, and adds keyboard shortcuts. No framework, no build step.
"use strict";
(() => {
  const main = () => document.querySelector("main");
  const UI = { "X-Rabble-UI": "1" };

  // Live: the hub says when the catalog changed; the page's <main> is fetched again,
  // unless the reader is typing in it.
  let busy = false, again = false;
  // `force`: after the reader's own action succeeded (the page shows its result).
  async function refresh(force) {
    if (busy) { again = true; return; }
    const m = main();
    // A page being edited (a job file, a KV value) is not refreshed under the editor's hands.
    if (!m || (force !== true && m.querySelector("[data-live=off]"))) return;
    const f = document.activeElement;
    if (f && m.contains(f) && /INPUT|TEXTAREA|SELECT/.test(f.tagName)) return;
    busy = true;
    try {
      const r = await fetch(location.href, { headers: { "X-Rabble-Fragment": "main" } });
      if (r.ok) {
        const keep = [...m.querySelectorAll("[data-keep]")].map((e) => [e.id, e]);
        m.innerHTML = await r.text();
        for (const [id, e] of keep) { const n = document.getElementById(id); if (n) n.replaceWith(e); }
        sample();
      }
    } finally {
      busy = false;
      if (again) { again = false; setTimeout(() => refresh(false), 100); }
    }
  }
  function live() {
    const dot = document.getElementById("live");
    const es = new EventSource("/ui/events");
    es.addEventListener("change", () => refresh(false));
    es.onopen = () => { if (dot) { dot.className = "on"; dot.textContent = "live"; } };
    es.onerror = () => { if (dot) { dot.className = "off"; dot.textContent = "reconnecting"; } };
  }

  // Forms marked data-api go to the API (through /ui/api, with the session's token).
  async function send(form, ev) {
    ev.preventDefault();
    const method = form.dataset.method || "POST";
    const out = form.querySelector(".result") || form.parentElement.querySelector(".result");
    if (form.dataset.confirm && !confirm(form.dataset.confirm)) return;
    const sub = ev.submitter || {};
    const dataset = { ...form.dataset, ...(sub.dataset || {}) };
    let path = dataset.api, body;
    if (form.dataset.newKey) path += encodeURI(form.elements.path.value);
    if (form.dataset.pathField) path += encodeURIComponent(form.elements[form.dataset.pathField].value);
    const headers = { ...UI };
    if (form.dataset.body === "json") {
      const o = {};
      for (const el of form.elements) {
        if (!el.name || el.name === form.dataset.pathField) continue;
        if (el.type === "checkbox") o[el.name] = el.checked;
        else if (el.dataset.type === "bool") o[el.name] = el.value === "true";
        else if (el.dataset.type === "list") o[el.name] = el.value.split(/[\s,]+/).filter((x) => x);
        else if (el.dataset.type === "json") o[el.name] = JSON.parse(el.value);
        else if (el.dataset.type === "in-ms") o[el.name] = new Date(Date.now() + Number(el.value)).toISOString();
        else if (el.type === "number") { if (el.value !== "") o[el.name] = Number(el.value); }
        else if (el.value !== "") o[el.name] = el.value;
      }
      body = JSON.stringify(o);
      headers["Content-Type"] = "application/json";
    } else if (form.dataset.body) {
      body = form.elements[form.dataset.body].value;
      // A job as JSON (the hub's own form) or a job file; a KV value is stored as it is.
      headers["Content-Type"] = body.trimStart().startsWith("{") ? "application/json" : "text/plain";
    }
    for (const el of form.elements) {
      if (el.dataset.query && el.value !== "") {
        path += (path.includes("?") ? "&" : "?") + el.dataset.query + "=" + encodeURIComponent(el.value);
      }
    }
    const r = await fetch("/ui/api" + path, { method, headers, body });
    const text = await r.text();
    let j = null;
    try { j = JSON.parse(text); } catch (_) {}
    // Consul's KV answers a refused check-and-set with 200 and `false`.
    const ok = r.ok && j !== false;
    if (out) {
      out.className = "result" + (ok ? "" : " err");
      if (j === false) out.textContent = "Not saved: the key changed since this page read it. Reload to see it.";
      else if (!r.ok) out.textContent = r.status + ": " + ((j && j.error) || text);
      else if (j && j.change !== undefined) out.textContent = plan(j);
      else out.textContent = j === true ? "Saved." : (j ? JSON.stringify(j, null, 2) : text);
    }
    if (ok && dataset.then) location.href = dataset.then.replace("{id}", encodeURIComponent((j && j.id) || ""));
    else if (ok && !dataset.stay) refresh(true);
  }

  // A plan in words: the change, the field diff, placements and stops.
  function plan(p) {
    const lines = ["job " + p.id + ": " + p.change + " (version " + p.version + ")"];
    for (const d of p.diff || []) {
      if (d.old === undefined || d.old === null) lines.push("+ " + d.path + ": " + JSON.stringify(d.new));
      else if (d.new === undefined || d.new === null) lines.push("- " + d.path + ": " + JSON.stringify(d.old));
      else lines.push("~ " + d.path + ": " + JSON.stringify(d.old) + " → " + JSON.stringify(d.new));
    }
    for (const a of p.placements || []) lines.push("place " + a.name + " on " + a.node);
    for (const s of p.stops || []) lines.push("stop " + s.name + " on " + s.node + " (" + s.reason + ")");
    if (p.in_place) lines.push(p.in_place + " allocation(s) updated in place");
    for (const [g, why] of Object.entries(p.unplaced || {})) lines.push("cannot place group " + g + ": " + why);
    for (const w of p.warnings || []) lines.push("warning: " + w);
    return lines.join("\n");
  }

  // Logs: streamed from the allocation's node (follow), shown as they come.
  let reading = null;
  async function logs(pre) {
    if (reading) reading.abort();
    reading = new AbortController();
    const sel = document.getElementById("log-type");
    const url = pre.dataset.logs + "&type=" + (sel ? sel.value : "stdout") + "&follow=true";
    pre.textContent = "";
    try {
      const r = await fetch("/ui/api" + url, { headers: UI, signal: reading.signal });
      if (!r.ok) { pre.textContent = "(" + r.status + ") " + (await r.text()); return; }
      const rd = r.body.getReader(), dec = new TextDecoder();
      for (;;) {
        const { value, done } = await rd.read();
        if (done) break;
        const end = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
        pre.textContent += dec.decode(value, { stream: true });
        if (pre.textContent.length > 512 * 1024) pre.textContent = pre.textContent.slice(-256 * 1024);
        if (end) pre.scrollTop = pre.scrollHeight;
      }
    } catch (e) { if (e.name !== "AbortError") pre.textContent += "\n(" + e + ")"; }
  }
  async function download(pre) {
    const sel = document.getElementById("log-type");
    const type = sel ? sel.value : "stdout";
    const r = await fetch("/ui/api" + pre.dataset.logs + "&type=" + type, { headers: UI });
    const a = document.createElement("a");
    a.href = URL.createObjectURL(await r.blob());
    a.download = (pre.dataset.name || "alloc") + "." + type + ".log";
    a.click();
  }

  // A job's rolling restart (as `rabble job restart`): each running allocation restarted
  // in place, the next once the one before runs again.
  async function rolling(btn) {
    if (btn.dataset.confirm && !confirm(btn.dataset.confirm)) return;
    const out = document.getElementById("job-result");
    const say = (text, err) => { if (out) { out.className = "result" + (err ? " err" : ""); out.textContent = text; } };
    const get = async (id) => (await fetch("/ui/api/api/v1/allocations/" + id, { headers: UI })).json();
    const last = (a) => Math.max(0, ...Object.values(a.tasks || {}).flatMap((t) => (t.events || []).map((e) => e.at_ms)));
    const back = (a, since) => a.client_status === "running" &&
      Object.values(a.tasks || {}).some((t) => (t.events || []).some((e) => e.at_ms > since && e.text.startsWith("restarted")));
    const ids = btn.dataset.allocs.split(" ");
    btn.disabled = true;
    try {
      for (const [i, id] of ids.entries()) {
        const before = await get(id), since = last(before);
        say("restarting " + before.name + " (" + (i + 1) + " of " + ids.length + ")");
        const r = await fetch("/ui/api/api/v1/allocations/" + id + "/restart", { method: "POST", headers: UI });
        if (!r.ok) throw new Error(before.name + ": " + r.status + " " + (await r.text()));
        for (let n = 0; ; n++) {
          await new Promise((ok) => setTimeout(ok, 500));
          const a = await get(id);
          if (back(a, since)) break;
          if (["failed", "complete", "lost"].includes(a.client_status) || n > 600) {
            throw new Error(a.name + " did not come back (" + a.client_status + "); the rest were not restarted");
          }
        }
      }
      say("restarted " + ids.length + " allocation(s), one at a time");
    } catch (e) { say(e.message, true); }
    btn.disabled = false;
  }

  // Node charts: samples kept in this browser tab (as Nomad's UI does), drawn as lines.
  function sample() {
    for (const svg of document.querySelectorAll("svg.chart[data-key]")) {
      const key = "rabble:" + svg.dataset.key, v = Number(svg.dataset.value);
      const pts = JSON.parse(sessionStorage.getItem(key) || "[]");
      const now = Date.now();
      if (!pts.length || now - pts[pts.length - 1][0] > 2000) pts.push([now, v]);
      while (pts.length > 180) pts.shift();
      sessionStorage.setItem(key, JSON.stringify(pts));
      const t0 = pts[0][0], span = Math.max(now - t0, 1);
      const line = pts.map(([t, y]) => ((t - t0) / span * 100).toFixed(1) + "," + (60 - y * 0.58).toFixed(1));
      svg.setAttribute("viewBox", "0 0 100 60");
      svg.setAttribute("preserveAspectRatio", "none");
      svg.innerHTML = '<polyline points="' + line.join(" ") + '"/>';
    }
  }

  // Keyboard: g then o/n/j/a/s/r/k goes to a page; / searches.
  let g = false;
  document.addEventListener("keydown", (e) => {
    if (/INPUT|TEXTAREA|SELECT/.test(document.activeElement.tagName) || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === "/") { const s = document.querySelector("input[type=search]"); if (s) { e.preventDefault(); s.focus(); } return; }
    if (g) {
      g = false;
      const to = { o: "", n: "nodes", j: "jobs", s: "services", r: "routing", k: "kv", v: "vars", a: "acl" }[e.key];
      if (to !== undefined) location.href = "/ui/" + to;
      return;
    }
    g = e.key === "g";
  });

  // Filters: rows of a table hidden as the search box is typed in.
  document.addEventListener("input", (e) => {
    const box = e.target;
    if (box.type !== "search" || !box.dataset.filter) return;
    const q = box.value.toLowerCase();
    for (const tr of document.querySelectorAll(box.dataset.filter + " tbody tr")) {
      tr.hidden = q !== "" && !tr.textContent.toLowerCase().includes(q);
    }
  });
  document.addEventListener("submit", (e) => { if (e.target.dataset.api) send(e.target, e); });
  document.addEventListener("click", (e) => {
    const b = e.target.closest("[data-action]");
    if (!b) return;
    const pre = document.querySelector("pre[data-logs]");
    if (b.dataset.action === "logs-download" && pre) download(pre);
    if (b.dataset.action === "logs-follow" && pre) logs(pre);
    if (b.dataset.action === "rolling-restart") rolling(b);
  });
  document.addEventListener("change", (e) => {
    if (e.target.id === "log-type") { const pre = document.querySelector("pre[data-logs]"); if (pre) logs(pre); }
  });
  addEventListener("DOMContentLoaded", () => {
    if (document.querySelector("header")) live();
    const pre = document.querySelector("pre[data-logs]");
    if (pre) logs(pre);
    sample();
  });
})();

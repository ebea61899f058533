/* tracker dashboard: data access, DOM building and number formatting.
 *
 * Every user string reaches the page through T.el (text nodes and
 * attributes), never through innerHTML, so a run named like a script tag
 * is shown as text.
 */
"use strict";
window.T = (function () {
  const T = {};
  T.mode = document.body.dataset.mode || "server";
  T.report = null;
  if (T.mode === "report") {
    T.report = JSON.parse(document.getElementById("report-data").textContent);
  }

  /* GET an API path; in a report, look it up in the embedded answers. */
  T.api = async function (path) {
    if (T.report) {
      if (path in T.report) return T.report[path];
      const derived = T.reportAnswer ? T.reportAnswer(path) : undefined;  /* reportdata.js */
      if (derived === undefined) throw new Error("This report does not include " + path);
      return derived;
    }
    const response = await fetch(path, { headers: { Accept: "application/json" }, cache: "no-store" });
    const body = await response.json().catch(() => ({ error: response.statusText }));
    if (!response.ok) throw new Error(body.error || ("HTTP " + response.status));
    return body;
  };

  T.query = function (params) {
    const q = new URLSearchParams();
    for (const [k, v] of params) q.append(k, v);
    const s = q.toString();
    return s ? "?" + s : "";
  };

  /* An API number (a number or "NaN"/"Infinity"/"-Infinity") as a JS number; null otherwise. */
  T.num = function (v) {
    if (typeof v === "number") return v;
    if (v === "NaN") return NaN;
    if (v === "Infinity") return Infinity;
    if (v === "-Infinity") return -Infinity;
    return null;
  };
  /* A value to plot: finite numbers only, anything else a gap. */
  T.plotNum = function (v) {
    const n = T.num(v);
    return n !== null && Number.isFinite(n) ? n : null;
  };

  T.fmt = function (v, digits) {
    if (v === null || v === undefined) return "—";
    if (typeof v === "number") {
      if (Number.isInteger(v) && Math.abs(v) < 1e15) return String(v);
      const a = Math.abs(v);
      if (a !== 0 && (a < 1e-4 || a >= 1e7)) return v.toExponential((digits || 4) - 1).replace(/\.?0+e/, "e");
      return String(Number(v.toPrecision(digits || 4)));
    }
    if (typeof v === "boolean") return v ? "yes" : "no";
    if (typeof v === "object") return JSON.stringify(v);
    return String(v);
  };
  /* The exact value, as the API gave it (shortest round-trip digits). */
  T.exact = function (v) {
    if (v === null || v === undefined) return "—";
    return typeof v === "object" ? JSON.stringify(v) : String(v);
  };

  /* A number to 7 significant digits (a float32's worth): 0.10000000149011612 reads 0.1. */
  T.short = function (v) {
    const n = T.num(v);
    return n === null ? T.exact(v) : T.fmt(n, 7);
  };

  T.date = function (iso) {
    if (!iso) return null;
    return new Date(/[zZ]|[+-]\d\d:\d\d$/.test(iso) ? iso : iso + "Z");
  };
  /* A time in UTC, marked Z, as the CLI prints it: 2026-01-31 12:00:00Z. */
  T.time = function (iso) {
    const d = T.date(iso);
    if (!d) return "—";
    const p = (n) => String(n).padStart(2, "0");
    return d.getUTCFullYear() + "-" + p(d.getUTCMonth() + 1) + "-" + p(d.getUTCDate()) + " " +
      p(d.getUTCHours()) + ":" + p(d.getUTCMinutes()) + ":" + p(d.getUTCSeconds()) + "Z";
  };
  /* "1 epoch", "2 epochs". */
  T.plural = (n, word) => `${typeof n === "number" ? n.toLocaleString("en") : n} ${word}${n === 1 ? "" : "s"}`;
  T.duration = function (s) {
    if (s === null || s === undefined) return "—";
    if (s < 60) return s.toFixed(s < 10 ? 1 : 0) + " s";
    if (s < 3600) return Math.floor(s / 60) + " m " + Math.round(s % 60) + " s";
    return Math.floor(s / 3600) + " h " + Math.round((s % 3600) / 60) + " m";
  };

  /* Build an element. attrs: class, text, data-*, title, href, on* handlers, anything else as an attribute. */
  T.el = function (tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  };

  /* One colour per run (and per train/val pair on a run page). */
  T.palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
    "#7f7f7f", "#bcbd22", "#393b79", "#e7969c", "#637939", "#ad494a", "#6b6ecf", "#8c6d31", "#3182bd", "#d6616b",
    "#31a354", "#756bb1"];  // 20 distinct colours: compare takes up to 20 runs
  T.color = (i) => T.palette[i % T.palette.length];

  /* Routes: real paths on the server, #/paths in a report. */
  T.href = function (route) {
    return T.mode === "report" ? "#" + route : route;
  };
  T.link = function (route, text, attrs) {
    return T.el("a", Object.assign({ href: T.href(route), "data-route": route }, attrs || {}), text);
  };
  T.runRoute = (id) => "/runs/" + encodeURIComponent(id);
  T.compareRoute = (ids) => "/compare" + T.query(ids.map((id) => ["run", id]));

  T.statusBadge = function (status) {
    return T.el("span", { class: "status status-" + status, "data-status": status, title: status }, status);
  };

  T.errorBox = function (message) {
    return T.el("p", { class: "error", role: "alert" }, message);
  };

  /* A key/value table. rows: [[label, value-or-node], ...] */
  T.kvTable = function (rows, cls) {
    return T.el("table", { class: "kv " + (cls || "") },
      T.el("tbody", null, rows.map(([k, v]) => T.el("tr", null, T.el("th", { scope: "row" }, k),
        T.el("td", null, v instanceof Node ? v : T.exact(v))))));
  };

  return T;
})();

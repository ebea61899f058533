/* tracker dashboard: a small canvas plotting kit for the experiment page (no library).
 *
 * Scales (linear, log, category), tick values, a HiDPI canvas, axes and a
 * colour ramp. The experiment page's plots (parallel.js, experiment.js)
 * draw with these; uPlot stays for the run and compare pages.
 */
"use strict";
(function (T) {
  const P = {};
  T.plot = P;

  /* A canvas of css size w x h, sharp on HiDPI screens; ctx is scaled to css pixels. */
  P.canvas = function (w, h, label) {
    const canvas = T.el("canvas", { role: "img", "aria-label": label || null });
    const ratio = window.devicePixelRatio || 1;
    canvas.width = Math.round(w * ratio);
    canvas.height = Math.round(h * ratio);
    canvas.style.width = w + "px";
    canvas.style.height = h + "px";
    const ctx = canvas.getContext("2d");
    ctx.scale(ratio, ratio);
    return { canvas, ctx, w, h };
  };

  /* The axis of a set of values: {kind: "number"|"category", log, low, high, categories}. */
  P.axisOf = function (values, log) {
    const present = values.filter((v) => v !== null && v !== undefined);
    if (present.length && present.every((v) => typeof v === "number" && Number.isFinite(v))) {
      const low = Math.min(...present), high = Math.max(...present);
      return { kind: "number", log: log === undefined ? low > 0 && high > 10 * low : log, low, high, categories: [] };
    }
    return { kind: "category", log: false, low: null, high: null, categories: [...new Set(present.map((v) => JSON.stringify(v)))].sort() };
  };

  /* A function from a value to a pixel in [a, b] (a: the low end), and back (.invert), for an axis
   * as the API gives it (Axis: kind, log, low, high, categories as JSON text). */
  P.scale = function (axis, a, b) {
    if (axis.kind === "category") {
      const n = axis.categories.length;
      const index = new Map(axis.categories.map((c, i) => [c, i]));
      const at = (i) => (n <= 1 ? (a + b) / 2 : a + (b - a) * (i + 0.5) / n);
      const f = (v) => { const i = index.get(JSON.stringify(v)); return i === undefined ? null : at(i); };
      f.invert = (px) => { const i = Math.floor(((px - a) / (b - a)) * n); return Math.max(0, Math.min(n - 1, i)); };
      f.at = at;
      return f;
    }
    let lo = axis.low, hi = axis.high;
    const t = axis.log ? Math.log10 : (x) => x;
    const u = axis.log ? (x) => Math.pow(10, x) : (x) => x;
    let tl = t(lo), th = t(hi);
    if (!(th > tl)) { const pad = axis.log ? 0.5 : (tl === 0 ? 1 : Math.abs(tl) / 2); tl -= pad; th += pad; }
    else { const pad = (th - tl) * 0.04; tl -= pad; th += pad; }
    const f = (v) => (typeof v !== "number" || !Number.isFinite(v) || (axis.log && v <= 0) ? null : a + (b - a) * (t(v) - tl) / (th - tl));
    f.invert = (px) => u(tl + (th - tl) * (px - a) / (b - a));
    f.domain = [u(tl), u(th)];
    return f;
  };

  /* Tick values for an axis: decades (with 2 and 5 when few) on a log axis, 1-2-5 steps otherwise. */
  P.ticks = function (axis, count) {
    if (axis.kind === "category") return axis.categories.map((c) => JSON.parse(c));
    const [lo, hi] = P.scale(axis, 0, 1).domain;
    if (axis.log) {
      const out = [], first = Math.floor(Math.log10(lo)), last = Math.ceil(Math.log10(hi));
      const mults = last - first <= 2 ? [1, 2, 3, 5] : last - first <= 4 ? [1, 3] : [1];
      for (let d = first; d <= last; d++) for (const m of mults) {
        const v = m * Math.pow(10, d);
        if (v >= lo && v <= hi) out.push(v);
      }
      return out;
    }
    const raw = (hi - lo) / (count || 5), mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
    return out;
  };

  /* A tick label: short numbers, categories as the API's text. */
  P.label = function (v) {
    if (typeof v === "number") return T.fmt(v, 3);
    return typeof v === "string" ? v : JSON.stringify(v);
  };

  /* A colour from a ramp (dark blue = 0 to yellow = 1: viridis' ends), for a value's place in [0, 1]. */
  const RAMP = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  P.ramp = function (f) {
    const x = Math.max(0, Math.min(1, f)) * (RAMP.length - 1), i = Math.min(RAMP.length - 2, Math.floor(x)), r = x - i;
    const c = RAMP[i].map((v, k) => Math.round(v + (RAMP[i + 1][k] - v) * r));
    return `rgb(${c[0]},${c[1]},${c[2]})`;
  };

  /* Draw a left (vertical) or bottom (horizontal) axis with ticks, labels and light grid lines. */
  P.drawAxis = function (ctx, axis, s, side, box) {
    ctx.save();
    ctx.font = "11px system-ui, sans-serif";
    ctx.fillStyle = "#667085";
    ctx.strokeStyle = "#e4e7ec";
    ctx.lineWidth = 1;
    const ticks = P.ticks(axis, side === "left" ? 5 : 6);
    let free = -Infinity;  // labels that would overlap the previous one are left out (the grid line stays)
    for (const v of ticks) {
      const p = s(v);
      if (p === null) continue;
      const text = P.label(v).slice(0, 14);
      ctx.beginPath();
      if (side === "left") {
        ctx.moveTo(box.x0, p); ctx.lineTo(box.x1, p); ctx.stroke();
        ctx.textAlign = "right"; ctx.textBaseline = "middle"; ctx.fillText(text, box.x0 - 4, p);
      } else {
        ctx.moveTo(p, box.y0); ctx.lineTo(p, box.y1); ctx.stroke();
        const half = ctx.measureText(text).width / 2;
        if (p - half < free + 6) continue;
        ctx.textAlign = "center"; ctx.textBaseline = "top"; ctx.fillText(text, p, box.y1 + 4);
        free = p + half;
      }
    }
    ctx.restore();
  };

  /* A figure with a caption around a canvas; data-* attributes say what was drawn (for tests and readers). */
  P.figure = function (key, title, attrs) {
    return T.el("figure", Object.assign({ class: "chart xplot", "data-plot": key }, attrs || {}), T.el("figcaption", null, title));
  };

  /* A small deterministic jitter in [-0.5, 0.5) for a string (category scatters). */
  P.jitter = function (text) {
    let h = 2166136261;
    for (let i = 0; i < text.length; i++) { h ^= text.charCodeAt(i); h = Math.imul(h, 16777619); }
    return ((h >>> 0) % 1000) / 1000 - 0.5;
  };
})(window.T);

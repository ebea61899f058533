/* tracker dashboard: charts (uPlot) with decision markers.
 *
 * x is Keras' epoch index: an epoch's value sits at x = epoch, and the
 * training of epoch e happens over (e - 1, e], so the batches of epoch e,
 * the learning rate it trained with and a change that took effect at it are
 * drawn over that span. Markers are DOM elements over the plot, each with a
 * tooltip (hover or keyboard focus) and a title.
 */
"use strict";
(function (T) {
  const C = {};
  T.charts = C;

  /* Series of several (x, ys...) tables on one x axis; null stays a gap, missing points are spanned. */
  function align(tables) {
    if (tables.length === 1) return [tables[0].x, ...tables[0].series.map((s) => s.values)];
    const joined = uPlot.join(tables.map((t) => [t.x, ...t.series.map((s) => s.values)]),
      tables.map((t) => t.series.map(() => 1)));
    return joined;
  }

  function yRange(data) {
    let lo = Infinity, hi = -Infinity;
    for (const ys of data.slice(1)) for (const v of ys) if (v !== null && v !== undefined) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    return [lo, hi];
  }

  /* On a log axis, label and grid only the powers of ten. */
  function decades(u, splits) {
    return splits.map((v) => (Math.abs(Math.log10(v) - Math.round(Math.log10(v))) < 1e-9 ? v : null));
  }

  /* A y range with room around the data; a flat line gets +-50% (or +-1 around 0). */
  function flatRange(min, max) {
    if (min === null || max === null) return [0, 1];
    if (min === max) {
      const pad = min === 0 ? 1 : Math.abs(min) / 2;
      return [min - pad, max + pad];
    }
    return uPlot.rangeNum(min, max, 0.1, true);
  }

  /* Place each marker at its x (and y) in the plot; hide those outside the x range. */
  function placeMarkers(u, nodes) {
    const [lo, hi] = [u.scales.x.min, u.scales.x.max];
    for (const { node, marker } of nodes) {
      const x = Math.min(Math.max(marker.x, lo), hi);
      node.style.left = u.valToPos(x, "x") + "px";
      node.hidden = !(marker.x >= lo - 1.001 && marker.x <= hi);
      const star = node.querySelector(".star");
      if (star && marker.y !== null && marker.y !== undefined && Number.isFinite(marker.y)) {
        const y = u.valToPos(marker.y, "y");
        star.hidden = !(y >= 0 && y <= u.over.clientHeight);
        star.style.top = y + "px";
      }
    }
  }

  function markerNode(marker, tip) {
    const node = T.el("div", {
      class: "marker marker-" + marker.kind, tabindex: "0", role: "note",
      "data-kind": marker.kind, "data-x": marker.x, title: marker.lines.join("\n"),
      "aria-label": marker.lines.join(". "),
    });
    if (marker.color) node.style.setProperty("--marker-color", marker.color);
    if (marker.y !== undefined && marker.y !== null) node.appendChild(T.el("span", { class: "star", "aria-hidden": "true" }, "★"));
    const show = () => {
      tip.replaceChildren(...marker.lines.map((line, i) => T.el(i ? "div" : "strong", null, line)));
      tip.hidden = false;
      const box = node.getBoundingClientRect(), host = tip.parentNode.getBoundingClientRect();
      tip.style.left = Math.max(0, Math.min(box.left - host.left + 8, host.width - tip.offsetWidth)) + "px";
      tip.style.top = "28px";
    };
    const hide = () => { tip.hidden = true; };
    node.addEventListener("mouseenter", show);
    node.addEventListener("focus", show);
    node.addEventListener("mouseleave", hide);
    node.addEventListener("blur", hide);
    node.removeAttribute("title");  // the tooltip replaces it; aria-label keeps the text for readers
    node.dataset.text = marker.lines.join(" | ");
    return node;
  }

  /* Draw one chart into `host`. spec: {key, title, tables: [{x, series: [{label, values, color, dash,
   * width, step}]}], markers: [{x, y?, kind, color?, lines: [..]}], xRange: [lo, hi], log: bool|"auto",
   * sync: key, height, yLabel}. Returns {u, destroy}. */
  C.make = function (host, spec) {
    const data = align(spec.tables);
    const flat = spec.tables.flatMap((t) => t.series);
    const counts = {};
    flat.forEach((s) => { counts[s.label] = s.values.filter((v) => v !== null && v !== undefined).length; });
    const box = T.el("figure", { class: "chart", "data-metric": spec.key, "data-counts": JSON.stringify(counts) },
      T.el("figcaption", null, spec.title));
    host.appendChild(box);
    const [lo, hi] = yRange(data);
    const log = spec.log === true || (spec.log === "auto" && lo > 0 && hi / lo > 100);
    const stepped = uPlot.paths.stepped({ align: 1 });
    const opts = {
      width: Math.max(280, host.clientWidth ? box.clientWidth || host.clientWidth : 600),
      height: spec.height || 220,
      scales: {
        x: { time: false, range: () => spec.xRange },
        y: log ? { distr: 3, log: 10 } : { range: (u, min, max) => flatRange(min, max) },
      },
      axes: [
        { label: "epoch", labelSize: 20, size: 36, incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000] },
        Object.assign({ label: spec.yLabel || "", labelSize: spec.yLabel ? 20 : 0, size: 64,
          values: (u, vals) => vals.map((v) => (v === null ? "" : T.fmt(v, 3))) },
        log ? { filter: decades, grid: { filter: decades }, ticks: { filter: decades } } : {}),
      ],
      series: [{ label: "epoch", value: (u, v) => (v === null || v === undefined ? "—" : T.fmt(v, 5)) }].concat(flat.map((s) => ({
        label: s.label,
        stroke: s.color,
        width: s.width || 2,
        dash: s.dash || undefined,
        spanGaps: false,
        paths: s.step ? stepped : undefined,
        points: { show: s.points !== undefined ? s.points : s.values.length <= 60, size: 5, fill: s.color },
        value: (u, v) => (v === null || v === undefined ? "—" : T.fmt(v, 6)),
        alpha: s.alpha || 1,
      }))),
      cursor: { sync: spec.sync ? { key: spec.sync, setSeries: false } : undefined, points: { size: 6 } },
      legend: { live: true },
    };
    const tip = T.el("div", { class: "tip", role: "tooltip", hidden: true });
    const nodes = [];
    opts.hooks = {
      ready: [(u) => {
        for (const marker of spec.markers || []) {
          const node = markerNode(marker, tip);
          u.over.appendChild(node);
          nodes.push({ node, marker });
        }
        placeMarkers(u, nodes);
      }],
      setSize: [(u) => placeMarkers(u, nodes)],
      setScale: [(u, key) => { if (key === "x" || key === "y") placeMarkers(u, nodes); }],
    };
    const u = new uPlot(opts, data, box);
    box.appendChild(tip);
    const observer = new ResizeObserver(() => {
      const w = Math.max(280, box.clientWidth);
      if (Math.abs(w - u.width) > 2) u.setSize({ width: w, height: u.height });
    });
    observer.observe(box);
    return { u, box, destroy() { observer.disconnect(); u.destroy(); box.remove(); } };
  };

  /* The x range shared by every chart of a page. */
  C.xRange = function (epochs, withBatches) {
    if (!epochs.length) return [0, 1];
    let lo = Math.min(...epochs), hi = Math.max(...epochs);
    if (withBatches) lo -= 1;
    if (lo === hi) return [lo - 0.5, hi + 0.5];
    const pad = Math.max(0.15, (hi - lo) * 0.01);  // room for the markers and points at the edges
    return [lo - pad, hi + pad];
  };

  /* LR step series of one optimizer: the rate of epoch e over (e - 1, e]. */
  C.lrTable = function (points, label, color, dash) {
    const rows = points.filter((p) => p.point === "epoch" && p.epoch !== null).sort((a, b) => a.epoch - b.epoch);
    const x = rows.map((p) => p.epoch - 1), values = rows.map((p) => T.plotNum(p.lr));
    if (rows.length) { x.push(rows[rows.length - 1].epoch); values.push(values[values.length - 1]); }
    return { x, series: [{ label, values, color, dash, step: true, points: false, width: 2 }] };
  };

  /* Markers for a run's decisions. `color` tints them per run on the compare page. */
  C.decisionMarkers = function (detail, options) {
    const o = options || {};
    const who = (source, hook) => source + (hook ? "." + hook : "");
    const prefix = o.prefix ? o.prefix + ": " : "";
    const markers = [];
    for (const c of detail.lr_changes || []) {
      markers.push({
        x: c.epoch === null ? 0 : c.epoch - 1, kind: "lr", color: o.color,
        lines: [prefix + "LR " + T.short(c.old_lr) + " → " + T.short(c.new_lr),
          "from epoch " + T.exact(c.epoch) + " (step " + T.exact(c.step) + ")" + (c.optimizer !== "optimizer" ? ", optimizer " + c.optimizer : ""),
          "by " + who(c.source, c.hook)],
      });
    }
    for (const s of detail.early_stops || []) {
      if (!s.stopped) continue;
      markers.push({
        x: s.stopped_epoch !== null ? s.stopped_epoch : s.epoch, kind: "stop", color: o.color,
        lines: [prefix + "Early stop at epoch " + T.exact(s.stopped_epoch !== null ? s.stopped_epoch : s.epoch) +
          (s.batch !== null ? ", batch " + s.batch : ""),
          "by " + who(s.stopper, s.hook),
          "monitor " + T.exact(s.monitor) + ", best " + T.short(s.best) + " at epoch " + T.exact(s.best_epoch),
          "patience " + T.exact(s.patience) + ", wait " + T.exact(s.wait) +
          (s.min_delta !== null ? ", min_delta " + T.short(s.min_delta) : "") + (s.mode ? ", mode " + s.mode : "")],
      });
    }
    for (const r of detail.restores || []) {
      const onChart = o.metricKeys && r.monitor && o.metricKeys.includes(r.monitor);
      markers.push({
        x: r.restored_epoch, kind: "restore", color: o.color,
        y: onChart ? T.plotNum(r.value_at_restored) : undefined,
        lines: [prefix + "Restored the weights of epoch " + T.exact(r.restored_epoch),
          (r.monitor || "value") + " = " + T.short(r.value_at_restored) + " there; " + T.short(r.value_at_last) +
          " at the last epoch " + T.exact(r.last_epoch),
          "by " + who(r.restored_by || "unknown", r.hook) + (r.at_epoch !== null ? " at epoch " + r.at_epoch : "")],
      });
    }
    return markers;
  };

  /* Metric charts to draw: each train key with its val_ twin, then val-only keys. */
  C.metricGroups = function (keys) {
    const set = new Set(keys), groups = [];
    for (const k of keys) if (!k.startsWith("val_")) groups.push(set.has("val_" + k) ? [k, "val_" + k] : [k]);
    for (const k of keys) if (k.startsWith("val_") && !set.has(k.slice(4))) groups.push([k]);
    return groups;
  };
})(window.T);

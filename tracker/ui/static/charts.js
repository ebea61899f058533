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
  function placeMarkers(u, nodes, map) {
    const [lo, hi] = [u.scales.x.min, u.scales.x.max];
    for (const { node, marker } of nodes) {
      const at = (map || ((v) => v))(marker.x);
      const x = Math.min(Math.max(at, lo), hi);
      node.style.left = u.valToPos(x, "x") + "px";
      node.hidden = !((map || ((v) => v))(marker.x + 1.001) >= lo && at <= hi);
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
    if (marker.y !== undefined && marker.y !== null) node.appendChild(T.el("span", { class: "star", "aria-hidden": "true" }, marker.glyph || "★"));
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

  /* Smoothing: each smoothable series as a faint raw copy behind its moving average. */
  function smoothed(tables, weight) {
    if (!weight) return tables;
    return tables.map((t) => ({ x: t.x, series: t.series.flatMap((s) => (s.step || s.batch ? [s] : [
      Object.assign({}, s, { label: s.label + " (raw)", alpha: 0.22, points: false, width: 1, raw: true }),
      Object.assign({}, s, { values: T.axes.ema(s.values, weight) })])) }));
  }

  /* Draw one chart into `host`. spec: {key, title, tables: [{x, series: [{label, values, color, dash,
   * width, step, batch}]}], markers: [{x, y?, kind, color?, lines: [..]}], xRange: [lo, hi] (epoch axis),
   * axis (T.axes), smooth (0..0.99), log: bool|"auto", sync: key, height, yLabel, compact (legend as a
   * readout under the chart)}. x values and marker positions are on the epoch axis. Returns the chart. */
  C.make = function (host, spec) {
    const axis = spec.axis || T.axes.epoch;
    const placed = spec.tables.map((t) => ({ x: t.x.map(axis.map), series: t.series }));
    const raw = align(placed);
    const drawn = smoothed(placed, spec.smooth);
    const data = align(drawn);
    const flat = drawn.flatMap((t) => t.series);
    const counts = {};
    const colors = {};
    flat.forEach((s) => { if (!s.raw) { counts[s.label] = s.values.filter((v) => v !== null && v !== undefined).length; colors[s.label] = s.color; } });
    const title = T.el("figcaption", null, T.el("span", { class: "chart-title" }, spec.title));
    const box = T.el("figure", { class: "chart", "data-metric": spec.key, "data-counts": JSON.stringify(counts), "data-colors": JSON.stringify(colors), "data-axis": axis.mode }, title);
    host.appendChild(box);
    const [lo, hi] = yRange(data);
    const log = spec.log === true || (spec.log === "auto" && lo > 0 && hi / lo > 100);
    const stepped = uPlot.paths.stepped({ align: 1 });
    const xs = raw[0].filter((v) => v !== null && v !== undefined);
    let xRange = axis.mode === "epoch" ? spec.xRange : (xs.length ? [Math.min(...xs), Math.max(...xs)] : [0, 1]);
    if (xRange[0] === xRange[1]) xRange = [xRange[0] - 0.5, xRange[1] + 0.5];
    let zoomed = false;
    const compact = spec.compact || flat.length > 8;
    const height = spec.height || 220;
    const xValues = axis.time ? undefined : axis.elapsed ? (u, vals) => vals.map(T.axes.clock) : undefined;
    const opts = {
      width: Math.max(280, host.clientWidth ? box.clientWidth || host.clientWidth : 600),
      height,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"),
      scales: {
        x: { time: !!axis.time, range: (u, min, max) => (zoomed ? [min, max] : xRange) },
        y: log ? { distr: 3, log: 10 } : { range: (u, min, max) => flatRange(min, max) },
      },
      axes: [
        Object.assign({ label: axis.label, labelSize: 20, size: 36 }, axis.mode === "epoch" ? { incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000] } : {},
          xValues ? { values: xValues } : {}),
        Object.assign({ label: spec.yLabel || "", labelSize: spec.yLabel ? 20 : 0, size: 64,
          values: (u, vals) => vals.map((v) => (v === null ? "" : T.fmt(v, 3))) },
        log ? { filter: decades, grid: { filter: decades }, ticks: { filter: decades } } : {}),
      ],
      series: [{ label: axis.label, value: (u, v) => (v === null || v === undefined ? "—" : axis.elapsed ? T.axes.clock(v) : axis.time ? T.time(new Date(v * 1000).toISOString()) : T.fmt(v, 5)) }].concat(flat.map((s) => ({
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
      cursor: { sync: spec.sync ? { key: spec.sync, setSeries: false } : undefined, points: { size: 6 }, drag: { x: true, y: false, setScale: false } },
      legend: { show: !compact, live: true },
    };
    const tip = T.el("div", { class: "tip", role: "tooltip", hidden: true });
    const readout = compact ? T.el("div", { class: "readout", "aria-live": "off" }, "hover the chart for values") : null;
    const nodes = [];
    const place = (u) => placeMarkers(u, nodes, axis.map);
    opts.hooks = {
      ready: [(u) => {
        for (const marker of spec.markers || []) {
          const node = markerNode(marker, tip);
          u.over.appendChild(node);
          nodes.push({ node, marker });
        }
        place(u);
      }],
      setSize: [place],
      setScale: [(u, key) => { if (key === "x" || key === "y") place(u); }],
      setSelect: [(u) => {
        if (u.select.width < 5) return;
        const min = u.posToVal(u.select.left, "x"), max = u.posToVal(u.select.left + u.select.width, "x");
        zoomed = true;
        u.setScale("x", { min, max });
        u.setSelect({ left: 0, width: 0, top: 0, height: 0 }, false);
        box.dataset.zoomed = "true";
      }],
      setCursor: readout ? [(u) => showReadout(u, readout)] : [],
    };
    const u = new uPlot(opts, data, box);
    box.appendChild(tip);
    if (readout) box.appendChild(readout);
    const chart = {
      u, box, title: spec.title, height, axis,
      raw: { data: raw, labels: placed.flatMap((t) => t.series.map((s) => s.label)), xLabel: axis.label },
      resetZoom() { zoomed = false; u.setScale("x", { min: xRange[0], max: xRange[1] }); delete box.dataset.zoomed; },
      destroy() { observer.disconnect(); u.destroy(); box.remove(); },
    };
    u.over.addEventListener("dblclick", () => chart.resetZoom());
    title.appendChild(T.chartTools.bar(chart));
    const observer = new ResizeObserver(() => {
      if (box.classList.contains("expanded")) return;
      const w = Math.max(280, box.clientWidth - 18);
      if (Math.abs(w - u.width) > 2) u.setSize({ width: w, height: u.height });
    });
    observer.observe(box);
    return chart;
  };

  /* Many series: their values at the cursor, as a short list under the chart instead of a legend. */
  function showReadout(u, readout) {
    const i = u.cursor.idx;
    if (i === null || i === undefined) return;
    const items = [];
    u.series.forEach((s, k) => {
      if (k === 0 || /\(raw\)$/.test(s.label)) return;
      const v = u.data[k][i];
      if (v !== null && v !== undefined) items.push([s.label, v, s._stroke || s.stroke]);
    });
    items.sort((a, b) => a[1] - b[1]);
    readout.replaceChildren(T.el("strong", null, u.series[0].value(u, u.data[0][i]) + ": "),
      ...items.map(([label, v, color]) => {
        const item = T.el("span", { class: "readout-item" }, T.el("span", { class: "swatch" }), label + " " + T.fmt(v, 5));
        item.firstChild.style.background = typeof color === "string" ? color : "#888";
        return item;
      }));
  }

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
        x: c.epoch === null ? 0 : c.epoch - 1, kind: o.lrTicks ? "lr-tick" : "lr", color: o.color,
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

  /* Markers for a run's saves (skipped epochs are not marked): on the chart of the saver's monitored key,
   * at its value; a save without a monitor (periodic, final) on the chart marked `first`. A save inside an
   * epoch sits at its batch on the epoch axis (the fit's steps per epoch from its Keras params). */
  C.checkpointMarkers = function (detail, options) {
    const o = options || {};
    const prefix = o.prefix ? o.prefix + ": " : "";
    const steps = {};
    for (const f of detail.fits || []) steps[f.call] = f.keras_params && f.keras_params.steps;
    const markers = [];
    for (const c of detail.checkpoints || []) {
      if (!c.saved || c.epoch === null) continue;
      const onChart = c.monitor && (o.metricKeys || []).includes(c.monitor);
      if (!(onChart || (o.first && !(c.monitor && (o.allKeys || []).includes(c.monitor))))) continue;
      const n = steps[c.call];
      const x = c.batch !== null && n ? c.epoch - 1 + (c.batch + 1) / n : c.epoch;
      const why = c.reason === "improved" ? `improved: ${c.monitor} ${T.short(c.value)} (best before ${T.short(c.best)})` : c.reason;
      markers.push({
        x, kind: "save", color: o.color, glyph: "◆", y: onChart ? T.plotNum(c.value) : undefined,
        lines: [prefix + "Saved " + (c.path || "(a file object)"),
          `${c.kind} at epoch ${c.epoch}` + (c.batch !== null ? `, batch ${c.batch}` : "") + ` (${why})`,
          "by " + c.saver + (c.hook ? "." + c.hook : "")],
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

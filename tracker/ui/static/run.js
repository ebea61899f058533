/* tracker dashboard: one run (curves, LR, decisions, phases, config) and the live refresh. */
"use strict";
(function (T) {
  T.views = T.views || {};
  const META = new Set(["phase", "phase_seq", "epoch", "started_at", "ended_at", "redone"]);
  const TRAIN = "#1f77b4", VAL = "#ff7f0e";

  /* Numeric logs keys of a list of epoch objects, in first-seen order. */
  T.epochKeys = function (epochs) {
    const keys = [];
    for (const e of epochs) for (const [k, v] of Object.entries(e)) {
      if (!META.has(k) && !keys.includes(k) && T.num(v) !== null) keys.push(k);
    }
    return keys.filter((k) => !/^(lr|learning_rate)$/.test(k)).sort();
  };

  T.epochTable = function (epochs, keys, style) {
    const rows = epochs.slice().sort((a, b) => a.epoch - b.epoch);
    return {
      x: rows.map((e) => e.epoch),
      series: keys.map((k) => Object.assign({ label: k, values: rows.map((e) => (k in e ? T.plotNum(e[k]) : undefined)) }, style(k))),
    };
  };

  function batchTables(batches, group, color) {
    return group.filter((k) => batches.series[k]).map((k) => ({
      x: batches.series[k].x,
      series: [{ label: k + " (batches)", values: batches.series[k].y.map(T.plotNum), color: color(k), width: 1, points: false, alpha: 0.45 }],
    }));
  }

  function decisionsList(detail) {
    const items = T.charts.decisionMarkers(detail, {}).map((m) => T.el("li", { class: "decision decision-" + m.kind }, m.lines.join(" — ")));
    for (const s of detail.early_stops || []) {
      if (s.stopped) continue;
      items.push(T.el("li", { class: "decision decision-nostop" }, `${s.stopper} did not stop: monitor ${T.exact(s.monitor)}, best ${T.exact(s.best)} at epoch ${T.exact(s.best_epoch)}, patience ${T.exact(s.patience)}, wait ${T.exact(s.wait)}`));
    }
    return items.length ? T.el("ul", { class: "decisions" }, items) : T.el("p", { class: "muted" }, "No learning-rate change, early stop or restore was recorded.");
  }

  function phasesTable(detail) {
    const head = ["#", "phase", "status", "started", "duration", "batches", "samples", "results / error"];
    return T.el("table", { class: "phases" }, T.el("thead", null, T.el("tr", null, head.map((h) => T.el("th", null, h)))),
      T.el("tbody", null, detail.phases.map((p) => {
        const secs = p.ended_at ? (T.date(p.ended_at) - T.date(p.started_at)) / 1000 : null;
        const results = p.results ? Object.entries(p.results).map(([k, v]) => T.el("span", { class: "result", title: T.exact(v) }, k + " = " + T.fmt(T.num(v) !== null ? T.num(v) : v))) : [];
        return T.el("tr", { "data-phase": p.phase },
          T.el("td", null, String(p.phase_seq)), T.el("td", null, p.phase + (p.initial_epoch ? ` (resumed at epoch ${p.initial_epoch})` : "")),
          T.el("td", null, T.statusBadge(p.status)), T.el("td", null, T.time(p.started_at)), T.el("td", null, T.duration(secs)),
          T.el("td", { class: "num" }, T.fmt(p.batch_count)), T.el("td", { class: "num" }, T.fmt(p.sample_count)),
          T.el("td", null, results, p.error ? T.el("span", { class: "error-text" }, p.error) : null));
      })));
  }

  function configBlock(title, value) {
    return T.el("details", { class: "config" }, T.el("summary", null, title), T.el("pre", null, JSON.stringify(value, null, 2)));
  }

  function header(detail, epochs) {
    const r = detail.run;
    const secs = (T.date(r.ended_at) || new Date()) - T.date(r.started_at);
    return T.el("div", { class: "run-head" },
      T.el("h1", { id: "run-name" }, r.name || r.id), T.statusBadge(r.status),
      T.el("span", { class: "muted", id: "epoch-count", "data-epochs": epochs.length }, `${epochs.length} epochs`),
      T.el("span", { class: "muted" }, "started " + T.time(r.started_at)),
      T.el("span", { class: "muted" }, T.duration(secs / 1000)),
      T.el("code", { class: "run-id", title: "run id" }, r.id));
  }

  /* Draw the curves: one chart per metric (train and val_ together), then the LR panel. */
  function drawCharts(host, detail, epochs, batches, sync) {
    const keys = T.epochKeys(epochs);
    const xs = epochs.map((e) => e.epoch);
    const xRange = T.charts.xRange(xs, !!batches);
    const markers = (group) => T.charts.decisionMarkers(detail, { metricKeys: group });
    const color = (k) => (k.startsWith("val_") ? VAL : TRAIN);
    const charts = [];
    const grid = T.el("div", { class: "charts" });
    host.replaceChildren(grid);
    for (const group of T.charts.metricGroups(keys)) {
      const tables = [T.epochTable(epochs, group, (k) => ({ color: color(k) }))];
      if (batches) tables.push(...batchTables(batches, group, color));
      charts.push(T.charts.make(grid, { key: group[0], title: group.join(" / "), tables, markers: markers(group), xRange, log: "auto", sync }));
    }
    const series = detail.lr_series || [];
    const optimizers = [...new Set(series.map((p) => p.optimizer))];
    const lrHost = T.el("div", { class: "lr-panel", id: "lr-panel" });
    host.appendChild(lrHost);
    if (optimizers.length) {
      const tables = optimizers.map((o, i) => T.charts.lrTable(series.filter((p) => p.optimizer === o), "LR " + o, T.color(i + 3)));
      const values = tables.flatMap((t) => t.series[0].values).filter((v) => v !== null && v > 0);
      charts.push(T.charts.make(lrHost, { key: "learning_rate", title: "learning rate (per epoch; changes marked)", tables, xRange, sync, height: 160,
        log: values.length && Math.max(...values) / Math.min(...values) > 10, markers: markers([]) }));
    } else {
      lrHost.appendChild(T.el("p", { class: "muted" }, "No learning rate was recorded."));
    }
    return charts;
  }

  T.views.run = function (main, runId) {
    let timer = null, disposed = false, charts = [], showBatches = false, last = "";
    const head = T.el("div"), chartsHost = T.el("section", { class: "curves" }), rest = T.el("div");
    const toggle = T.el("input", { type: "checkbox", id: "batch-toggle" });
    main.replaceChildren(head, T.el("div", { class: "toolbar" }, T.el("label", null, toggle, " batch-level curves (downsampled)")), chartsHost, rest);
    main.dataset.view = "run";

    async function load() {
      let detail, epochs, batches = null;
      try {
        [detail, epochs] = await Promise.all([T.api("/api/runs/" + runId), T.api("/api/runs/" + runId + "/epochs")]);
        if (showBatches) batches = await T.api("/api/runs/" + runId + "/batches" + T.query([["phase", "fit"], ["points", "2000"]]));
      } catch (err) {
        if (!detail) { main.replaceChildren(T.errorBox(err.message)); return; }
      }
      if (disposed) return;
      const signature = JSON.stringify([detail.run.status, epochs.length, detail.lr_changes.length, detail.early_stops.length, detail.restores.length, !!batches, batches && batches.total]);
      head.replaceChildren(header(detail, epochs));
      document.title = (detail.run.name || detail.run.id) + " · tracker";
      if (signature !== last) {
        last = signature;
        charts.forEach((c) => c.destroy());
        charts = drawCharts(chartsHost, detail, epochs, batches, "run-" + runId);
        rest.replaceChildren(
          T.el("h2", null, "Decisions"), decisionsList(detail),
          T.el("h2", null, "Phases"), phasesTable(detail),
          T.el("div", { class: "columns" },
            T.el("section", null, T.el("h2", null, "Params"), T.kvTable(Object.entries(detail.params), "params")),
            T.el("section", null, T.el("h2", null, "Tags"), T.kvTable(Object.entries(detail.tags), "tags")),
            T.el("section", null, T.el("h2", null, "Versions"), T.kvTable(Object.entries(detail.run.versions || {}), "versions"))),
          T.el("h2", null, "Model and optimizer"),
          T.kvTable([["model", detail.run.model_name], ["parameters", detail.run.param_count], ["host", detail.run.host], ["pid", detail.run.pid]]),
          configBlock("model config", detail.model_config),
          ...detail.fits.map((f) => configBlock(`fit #${f.phase_seq}: optimizer config and Keras params`, { optimizer_config: f.optimizer_config, keras_params: f.keras_params })),
          ...(detail.run.error ? [T.el("h2", null, "Error"), T.el("pre", { class: "error-text" }, detail.run.error)] : []));
      }
      const live = T.mode === "server" && detail.run.status === "running";
      main.dataset.live = String(live);
      document.getElementById("live").hidden = !live;
      if (live && !disposed) timer = setTimeout(load, 1000);
    }
    toggle.addEventListener("change", () => { showBatches = toggle.checked; clearTimeout(timer); load(); });
    load();
    return () => { disposed = true; clearTimeout(timer); charts.forEach((c) => c.destroy()); document.getElementById("live").hidden = true; };
  };
})(window.T);

/* tracker dashboard: one run (curves, LR, system metrics, decisions, phases, config) and the live refresh. */
"use strict";
(function (T) {
  T.views = T.views || {};
  const META = new Set(["phase", "phase_seq", "call", "epoch", "started_at", "ended_at", "redone"]);
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

  /* Batch curves go under the epoch curve: thin and faint, drawn first. */
  function batchTables(batches, group, color) {
    return group.filter((k) => batches.series[k]).map((k) => ({
      x: batches.series[k].x,
      series: [{ label: k + " (batches)", values: batches.series[k].y.map(T.plotNum), color: color(k), width: 1, points: false, alpha: 0.3, batch: true }],
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

  /* A call as the CLI names it: "fit", or "fit 2" (the run's second fit) when the run made several. */
  T.callLabel = function (phases, p) {
    return phases.filter((q) => q.phase === p.phase).length > 1 ? `${p.phase} ${p.call}` : p.phase;
  };

  function phasesTable(detail) {
    const head = ["call", "status", "started", "duration", "batches", "samples", "results / error"];
    return T.el("table", { class: "phases" }, T.el("thead", null, T.el("tr", null, head.map((h) => T.el("th", null, h)))),
      T.el("tbody", null, detail.phases.map((p) => {
        const secs = p.ended_at ? (T.date(p.ended_at) - T.date(p.started_at)) / 1000 : null;
        const results = p.results ? Object.entries(p.results).map(([k, v]) => T.el("span", { class: "result", title: T.exact(v) }, k + " = " + T.fmt(T.num(v) !== null ? T.num(v) : v))) : [];
        return T.el("tr", { "data-phase": p.phase },
          T.el("td", { title: `phase_seq ${p.phase_seq}` }, T.callLabel(detail.phases, p) + (p.initial_epoch ? ` (resumed at epoch ${p.initial_epoch})` : "")),
          T.el("td", null, T.statusBadge(p.status)), T.el("td", null, T.time(p.started_at)), T.el("td", null, T.duration(secs)),
          T.el("td", { class: "num" }, T.fmt(p.batch_count)), T.el("td", { class: "num" }, T.fmt(p.sample_count)),
          T.el("td", null, results, p.error ? T.el("span", { class: "error-text" }, p.error) : null));
      })));
  }

  /* A run as a link to its page (in a report, only the runs it holds are links). */
  function runLink(id, name) {
    const text = (name || id.slice(0, 8)) + " (" + id.slice(0, 8) + ")";
    if (T.mode === "report" && !(("/api/runs/" + id) in T.report)) return T.el("span", { class: "run-ref" }, text);
    return T.link(T.runRoute(id), text, { class: "run-link", "data-run": id });
  }

  /* Where the run started from, and the runs started from it: links both ways. */
  function lineageBlock(detail) {
    const rows = detail.lineage || [];
    const mine = (r) => (r.relation === "ancestor" ? r.child_id : r.parent_id) === detail.run.id;
    const items = rows.filter((r) => r.depth === 1 && mine(r)).map((r) => {
      const what = r.layers ? `sub-model ${r.layers} ` : "";
      const at = `epoch ${r.epoch}` + (r.batch !== null ? `, batch ${r.batch}` : "");
      return r.relation === "ancestor"
        ? T.el("li", { class: "lineage-parent" }, `fit ${r.fit} started ${what ? "its " + what : ""}from `, runLink(r.parent_id, r.parent), ", " + at)
        : T.el("li", { class: "lineage-child" }, runLink(r.child_id, r.child), ` (fit ${r.fit}) started ${what ? "its " + what : ""}from this run's ${at}`);
    });
    return items.length ? T.el("ul", { class: "lineage" }, items) : T.el("p", { class: "muted" }, "Started from a fresh model (weights no other recorded run ended an epoch with); no run started from this one.");
  }

  function checkpointsTable(detail) {
    const rows = detail.checkpoints || [];
    if (!rows.length) return T.el("p", { class: "muted" }, "No checkpoint was saved.");
    const head = ["call", "epoch", "batch", "saved", "kind", "reason", "monitor", "value", "best before", "path", "saver"];
    return T.el("table", { class: "checkpoints" }, T.el("thead", null, T.el("tr", null, head.map((h) => T.el("th", null, h)))),
      T.el("tbody", null, rows.map((c) => T.el("tr", { "data-saved": String(c.saved) },
        T.el("td", null, T.callLabel(detail.phases, c)), T.el("td", { class: "num" }, T.exact(c.epoch)),
        T.el("td", { class: "num" }, c.batch === null ? "" : c.batch), T.el("td", null, c.saved ? "yes" : "skipped"),
        T.el("td", null, c.kind), T.el("td", null, c.reason), T.el("td", null, c.monitor || ""),
        T.el("td", { class: "num", title: T.exact(c.value) }, c.value === null ? "" : T.short(c.value)),
        T.el("td", { class: "num", title: T.exact(c.best) }, c.best === null ? "" : T.short(c.best)),
        T.el("td", { class: "path" }, c.path || ""), T.el("td", null, c.saver)))));
  }

  function configBlock(title, value) {
    return T.el("details", { class: "config" }, T.el("summary", null, title), T.el("pre", null, JSON.stringify(value, null, 2)));
  }

  function header(detail, n) {
    const r = detail.run;
    const secs = (T.date(r.ended_at) || new Date()) - T.date(r.started_at);
    return T.el("div", { class: "run-head" },
      T.el("h1", { id: "run-name" }, r.name || r.id), T.statusBadge(r.status),
      r.experiment ? T.el("span", { class: "muted", id: "run-experiment" }, "experiment ",
        T.mode === "report" && !T.report["/api/sweep" + T.query([["experiment", r.experiment]])] ? r.experiment
          : T.link(T.experimentRoute(r.experiment), r.experiment), r.trial !== undefined && r.trial !== null ? ", trial " + r.trial : "") : null,
      T.el("span", { class: "muted", id: "epoch-count", "data-epochs": n }, T.plural(n, "epoch")),
      T.el("span", { class: "muted" }, "started " + T.time(r.started_at)),
      T.el("span", { class: "muted" }, T.duration(secs / 1000)),
      T.el("code", { class: "run-id", title: "run id" }, r.id));
  }

  /* The LR panel: a chart of each optimizer's rate with the changes marked, or one line when it never changed. */
  function lrPanel(host, detail, axis, xRange, sync) {
    const series = (detail.lr_series || []).filter((p) => p.point !== "batch");
    const optimizers = [...new Set(series.map((p) => p.optimizer))];
    if (!optimizers.length) { host.replaceChildren(T.el("p", { class: "muted", id: "lr-note" }, "No learning rate was recorded.")); return null; }
    const constant = optimizers.map((o) => [o, [...new Set(series.filter((p) => p.optimizer === o).map((p) => T.exact(p.lr)))]]);
    if (!(detail.lr_changes || []).length && constant.every(([, values]) => values.length === 1)) {
      host.replaceChildren(T.el("p", { class: "lr-note", id: "lr-note" }, "Learning rate: ",
        constant.map(([o, [v]], i) => T.el("span", null, (i ? "; " : "") + T.short(v) + (optimizers.length > 1 ? ` (${o})` : ""))),
        " throughout; no change was recorded."));
      return null;
    }
    host.replaceChildren();
    const tables = optimizers.map((o, i) => T.charts.lrTable(series.filter((p) => p.optimizer === o), "LR " + o, T.color(i + 3)));
    const values = tables.flatMap((t) => t.series[0].values).filter((v) => v !== null && v > 0);
    return T.charts.make(host, { key: "learning_rate", title: "learning rate (per epoch; changes marked)", tables, xRange, sync, height: 160, axis,
      log: values.length && Math.max(...values) / Math.min(...values) > 10, markers: T.charts.decisionMarkers(detail, { metricKeys: [] }) });
  }

  function paramsBlock(params) {
    const entries = Object.entries(params || {});
    if (entries.length) return T.kvTable(entries, "params");
    return T.el("p", { class: "muted params-empty" }, "No params were given for this run. Give them when tracking: ",
      T.el("code", null, 'TrackingCallback("runs.db", params={"lr": 1e-3, "batch_size": 32})'), ".");
  }

  T.views.run = function (main, runId) {
    let timer = null, disposed = false, lazy = null, lr = null, last = "", batches = null, panelDrawn = false, message = null, drawn = 0;
    const view = { smooth: 0, axis: "epoch", search: "", batches: false };
    const head = T.el("div"), chartsHost = T.el("section", { class: "curves", id: "curves" }), lrHost = T.el("div", { class: "lr-panel", id: "lr-panel" }), rest = T.el("div"), editHost = T.el("div");
    const toggle = T.el("input", { type: "checkbox", id: "batch-toggle" });
    const keyCount = T.el("span", { class: "muted", id: "key-count" });
    const controls = T.chartControls(view, (what) => redraw(what), { search: true });
    controls.append(T.el("label", null, toggle, " batch-level curves (downsampled)"), keyCount);
    const systemHost = T.el("div", { id: "system-charts" });
    const system = T.systemPanel(systemHost, runId);  /* system.js: drawn when scrolled to */
    main.replaceChildren(head, editHost, controls, chartsHost, lrHost,
      T.el("section", { class: "system-panel", id: "system-panel" }, T.el("h2", null, "System"), systemHost), rest);
    /* After an edit: redraw the panel and the sections (a live refresh leaves a half-typed edit alone). */
    const edited = (said) => { panelDrawn = false; message = said; clearTimeout(timer); load(); };
    main.dataset.view = "run";
    let detail = null, keys = [], loader = null, meta = null, firstKey = null;

    const color = (k) => (k.startsWith("val_") ? VAL : TRAIN);
    const axisOf = () => {
      const axis = T.axes.forRun(meta, view.axis, detail.run.started_at);
      controls.querySelector("#x-axis").title = axis.available === false ? "no batch was recorded, so steps are not known: epochs shown" : "";
      return axis;
    };
    const xRange = () => T.charts.xRange(meta ? meta.epoch : [], !!batches);

    async function drawGroup(group, slot) {
      const data = await loader.get(group);
      meta = data.meta;
      if (disposed || !slot.isConnected) return null;
      const present = group.filter((k) => data.values[k].some((v) => T.plotNum(v) !== null));
      if (!present.length) return null;
      const tables = batches ? batchTables(batches, group, color) : [];
      tables.push(T.curveTable(data.meta, data.values, present, (k) => ({ color: color(k), width: 2 })));
      return T.charts.make(slot, { key: group[0], title: group.join(" / "), tables, xRange: xRange(), axis: axisOf(), smooth: view.smooth,
        markers: T.charts.decisionMarkers(detail, { metricKeys: group, lrTicks: true }).concat(
          T.charts.checkpointMarkers(detail, { metricKeys: group, first: group[0] === firstKey, allKeys: keys })), log: "auto", sync: "run-" + runId });
    }

    function layout() {
      if (lazy) lazy.destroy();
      const sections = T.keySections(keys, view.search);
      firstKey = sections.length && sections[0].groups.length ? sections[0].groups[0][0] : null;  /* saves of an uncharted key go here */
      const shown = sections.reduce((n, s) => n + s.groups.reduce((m, g) => m + g.length, 0), 0);
      keyCount.textContent = view.search ? `${shown} of ${T.plural(keys.length, "key")} match` : T.plural(keys.length, "key");
      lazy = T.lazyCharts(chartsHost, sections, drawGroup, 220);
      if (!sections.length) chartsHost.replaceChildren(T.el("p", { class: "muted" }, view.search ? "No key matches the search." : "No epoch was logged yet."));
    }

    function drawLr() {
      if (lr) lr.destroy();
      lr = lrPanel(lrHost, detail, axisOf(), xRange(), "run-" + runId);
    }

    async function redraw(what) {
      if (what === "batches") {
        batches = view.batches ? await T.api("/api/runs/" + runId + "/batches" + T.query([["phase", "fit"], ["points", "2000"]])) : null;
      }
      if (what === "search") layout();
      else if (lazy) lazy.redraw();
      drawLr();
    }

    async function load() {
      let probe;
      try {
        [detail, keys] = await Promise.all([T.api("/api/runs/" + runId), T.api("/api/runs/" + runId + "/keys").then((a) => a.keys)]);
        if (!loader) loader = T.curveLoader(runId, keys);
        probe = await loader.probe();
      } catch (err) {
        if (!detail) { main.replaceChildren(T.errorBox(err.message)); return; }
      }
      if (disposed || !probe) return;
      meta = probe;
      if (T.editable && !panelDrawn) {
        panelDrawn = true;
        const panel = T.editPanel(detail, edited, message);
        panel.dataset.drawn = String(++drawn);  // tests wait for a redraw after an edit
        editHost.replaceChildren(panel);
      }
      const signature = JSON.stringify([detail.run.status, detail.run.name, detail.run.note, detail.tags, probe.epoch.length, keys.length, detail.lr_changes.length, detail.early_stops.length, detail.restores.length, (detail.checkpoints || []).length, (detail.lineage || []).length]);
      head.replaceChildren(header(detail, probe.epoch.length));
      document.title = (detail.run.name || detail.run.id) + " · tracker";
      if (signature !== last) {
        const first = !last;
        last = signature;
        loader = T.curveLoader(runId, keys);
        if (view.batches) batches = await T.api("/api/runs/" + runId + "/batches" + T.query([["phase", "fit"], ["points", "2000"]]));
        if (first || !lazy) layout(); else lazy.redraw();
        drawLr();
        if (!first) system.refresh();
        rest.replaceChildren(
          ...(detail.run.note ? [T.el("h2", null, "Note"), T.el("p", { class: "note", id: "run-note" }, detail.run.note)] : []),
          T.el("h2", null, "Decisions"), decisionsList(detail),
          T.el("h2", null, "Lineage"), lineageBlock(detail),
          T.el("h2", null, "Checkpoints"), checkpointsTable(detail),
          T.el("h2", null, "Phases"), phasesTable(detail),
          T.el("div", { class: "columns" },
            T.el("section", null, T.el("h2", null, "Params"), paramsBlock(detail.params)),
            T.el("section", null, T.el("h2", null, "Tags"), T.kvTable(Object.entries(detail.tags), "tags")),
            T.el("section", null, T.el("h2", null, "Versions"), T.kvTable(Object.entries(detail.run.versions || {}), "versions"))),
          T.el("h2", null, "Model and optimizer"),
          T.kvTable([["model", detail.run.model_name], ["parameters", detail.run.param_count], ["host", detail.run.host], ["pid", detail.run.pid]]),
          configBlock("model config", detail.model_config),
          ...detail.fits.map((f) => configBlock(`${T.callLabel(detail.fits.map((g) => ({ phase: "fit", call: g.call })), { phase: "fit", call: f.call })}: optimizer config and Keras params`, { optimizer_config: f.optimizer_config, keras_params: f.keras_params })),
          ...(detail.run.error ? [T.el("h2", null, "Error"), T.el("pre", { class: "error-text" }, detail.run.error)] : []));
      }
      const live = T.mode === "server" && detail.run.status === "running";
      main.dataset.live = String(live);
      document.getElementById("live").hidden = !live;
      if (live && !disposed) timer = setTimeout(load, 1000);
    }
    toggle.addEventListener("change", () => { view.batches = toggle.checked; redraw("batches"); });
    load();
    return () => { disposed = true; clearTimeout(timer); if (lazy) lazy.destroy(); if (lr) lr.destroy(); system.destroy(); document.getElementById("live").hidden = true; };
  };
})(window.T);

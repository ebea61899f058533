/* tracker dashboard: N runs overlaid, one colour per run (shared by its LR line), and the table
 * of differing params and best/final values. */
"use strict";
(function (T) {
  T.views = T.views || {};

  function labels(details) {
    const names = details.map((d) => d.run.name || d.run.id.slice(0, 8));
    return names.map((n, i) => (names.filter((m) => m === n).length > 1 ? `${n} (${details[i].run.id.slice(0, 8)})` : n));
  }

  function compareTable(result, details, names) {
    const byId = Object.fromEntries(result.rows.map((r) => [r.run_id, r]));
    const fields = result.columns.filter((c) => !["run_id", "name", "started_at"].includes(c));
    const head = T.el("tr", null, T.el("th", null, "field"), details.map((d, i) => T.el("th", { class: "run-col" },
      T.el("span", { class: "swatch", style: null, "data-color": T.color(i) }), T.link(T.runRoute(d.run.id), names[i]))));
    const body = fields.map((f) => T.el("tr", { class: f.startsWith("param:") ? "param-row" : (f.startsWith("best") || f.startsWith("final") ? "metric-row" : "") },
      T.el("th", { scope: "row" }, f), details.map((d) => {
        const v = (byId[d.run.id] || {})[f];
        const shown = f === "duration_s" ? T.duration(v) : (f === "status" ? T.statusBadge(v) : T.fmt(T.num(v) !== null ? T.num(v) : v));
        return T.el("td", { class: "num", title: T.exact(v) }, shown);
      })));
    const table = T.el("table", { class: "compare", id: "compare-table" }, T.el("thead", null, head), T.el("tbody", null, body));
    table.querySelectorAll(".swatch").forEach((s) => { s.style.background = s.dataset.color; });
    return table;
  }

  T.views.compare = function (main, ids) {
    let timer = null, disposed = false, charts = [];
    main.dataset.view = "compare";
    async function load() {
      let details, epochs, result;
      try {
        [details, epochs, result] = await Promise.all([
          Promise.all(ids.map((id) => T.api("/api/runs/" + id))),
          Promise.all(ids.map((id) => T.api("/api/runs/" + id + "/epochs"))),
          T.api("/api/compare" + T.query(ids.map((id) => ["run", id]))),
        ]);
      } catch (err) {
        main.replaceChildren(T.errorBox(err.message));
        return;
      }
      if (disposed) return;
      const names = labels(details);
      charts.forEach((c) => c.destroy());
      charts = [];
      const keys = [...new Set(epochs.flatMap((e) => T.epochKeys(e)))].sort();
      const xRange = T.charts.xRange(epochs.flatMap((e) => e.map((x) => x.epoch)), false);
      const legend = T.el("div", { class: "legend" }, details.map((d, i) => {
        const chip = T.el("span", { class: "chip", "data-run-id": d.run.id }, T.el("span", { class: "swatch" }), T.link(T.runRoute(d.run.id), names[i]), " ", T.statusBadge(d.run.status));
        chip.firstChild.style.background = T.color(i);
        return chip;
      }));
      const grid = T.el("div", { class: "charts" });
      const lrHost = T.el("div", { class: "lr-panel", id: "lr-panel" });
      main.replaceChildren(T.el("h1", null, `Compare ${ids.length} runs`), legend, T.el("p", { class: "muted" }, "solid: training keys · dashed: val_ keys · markers: LR changes, early stops (dashed), restored epochs (★)"),
        T.el("section", { class: "curves" }, grid, lrHost), T.el("h2", null, "Params that differ, best and final values"), compareTable(result, details, names));
      const markers = (group) => details.flatMap((d, i) => T.charts.decisionMarkers(d, { color: T.color(i), prefix: names[i], metricKeys: group }));
      for (const group of T.charts.metricGroups(keys)) {
        const tables = epochs.map((e, i) => T.epochTable(e, group.filter((k) => e.some((x) => k in x)), (k) => ({
          label: names[i] + " · " + k, color: T.color(i), dash: k.startsWith("val_") ? [6, 4] : undefined,
        }))).filter((t) => t.series.length);
        if (!tables.length) continue;
        charts.push(T.charts.make(grid, { key: group[0], title: group.join(" / "), tables, markers: markers(group), xRange, log: "auto", sync: "compare" }));
      }
      const lrTables = details.map((d, i) => {
        const points = (d.lr_series || []).filter((p) => p.optimizer === ((d.lr_series[0] || {}).optimizer));
        return T.charts.lrTable(points, names[i] + " · LR", T.color(i));
      }).filter((t) => t.x.length);
      if (lrTables.length) {
        const values = lrTables.flatMap((t) => t.series[0].values).filter((v) => v !== null && v > 0);
        charts.push(T.charts.make(lrHost, { key: "learning_rate", title: "learning rate (each run in its colour)", tables: lrTables, xRange, sync: "compare", height: 170,
          log: values.length && Math.max(...values) / Math.min(...values) > 10, markers: markers([]) }));
      }
      const live = T.mode === "server" && details.some((d) => d.run.status === "running");
      main.dataset.live = String(live);
      if (live && !disposed) timer = setTimeout(load, 2000);
    }
    load();
    return () => { disposed = true; clearTimeout(timer); charts.forEach((c) => c.destroy()); };
  };
})(window.T);

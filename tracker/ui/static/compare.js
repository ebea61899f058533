/* tracker dashboard: 2 to 20 runs overlaid, one colour per run (shared by its LR line), with the
 * chart controls, and the table of what differs between them. */
"use strict";
(function (T) {
  T.views = T.views || {};

  function labels(details) {
    const names = details.map((d) => d.run.name || d.run.id.slice(0, 8));
    return names.map((n, i) => (names.filter((m) => m === n).length > 1 ? `${n} (${details[i].run.id.slice(0, 8)})` : n));
  }

  T.views.compare = function (main, ids) {
    let timer = null, disposed = false, lazy = null, lr = null, last = "";
    const view = { smooth: 0, axis: "epoch", search: "" };
    const controls = T.chartControls(view, (what) => redraw(what), { search: true });
    const head = T.el("div"), chartsHost = T.el("section", { class: "curves", id: "curves" });
    const lrHost = T.el("div", { class: "lr-panel", id: "lr-panel" }), tableHost = T.el("section");
    main.replaceChildren(head, controls, chartsHost, lrHost, tableHost);
    main.dataset.view = "compare";
    let details = [], names = [], keys = [], loaders = [], metas = [];
    const axisOf = (i) => T.axes.forRun(metas[i], view.axis, details[i].run.started_at);
    const xRange = () => T.charts.xRange(metas.flatMap((m) => (m ? m.epoch : [])), false);
    const markers = (group, ticks) => details.flatMap((d, i) => T.charts.decisionMarkers(d, { color: T.color(i), prefix: names[i], metricKeys: group, lrTicks: ticks }));

    /* One chart of every run's curves of a group: each run on its own axis mapping, in its colour. */
    async function drawGroup(group, slot) {
      const answers = await Promise.all(loaders.map((l, i) => (keysOf[i].some((k) => group.includes(k)) ? l.get(group.filter((k) => keysOf[i].includes(k))) : null)));
      if (disposed || !slot.isConnected) return null;
      const tables = [];
      answers.forEach((a, i) => {
        if (!a) return;
        metas[i] = a.meta;
        const present = Object.keys(a.values).filter((k) => a.values[k].some((v) => T.plotNum(v) !== null));
        if (!present.length) return;
        const axis = axisOf(i), t = T.curveTable(a.meta, a.values, present, (k) => ({
          label: names[i] + " · " + k, color: T.color(i), dash: k.startsWith("val_") ? [6, 4] : undefined }));
        tables.push({ x: t.x.map(axis.map), series: t.series });
      });
      if (!tables.length) return null;
      const axis = Object.assign({}, axisOf(0), { map: (x) => x });  // x already placed per run
      const epochAxis = view.axis === "epoch";
      return T.charts.make(slot, { key: group[0], title: group.join(" / "), tables, xRange: xRange(), axis, smooth: view.smooth, compact: true,
        markers: epochAxis ? markers(group, true) : [], log: "auto", sync: "compare" });
    }

    let keysOf = [];
    function layout() {
      if (lazy) lazy.destroy();
      lazy = T.lazyCharts(chartsHost, T.keySections(keys, view.search), drawGroup, 220);
    }

    function drawLr() {
      if (lr) lr.destroy();
      lr = null;
      const tables = details.map((d, i) => {
        const points = (d.lr_series || []).filter((p) => p.optimizer === ((d.lr_series[0] || {}).optimizer));
        const t = T.charts.lrTable(points, names[i] + " · LR", T.color(i));
        const axis = axisOf(i);
        return { x: t.x.map(axis.map), series: t.series };
      }).filter((t) => t.x.length);
      const values = tables.flatMap((t) => t.series[0].values).filter((v) => v !== null && v > 0);
      if (!tables.length) { lrHost.replaceChildren(T.el("p", { class: "muted", id: "lr-note" }, "No learning rate was recorded.")); return; }
      if (!details.some((d) => (d.lr_changes || []).length) && new Set(values).size === 1) {
        lrHost.replaceChildren(T.el("p", { class: "lr-note", id: "lr-note" }, `Learning rate: ${T.short(values[0])} in every run, throughout; no change was recorded.`));
        return;
      }
      lrHost.replaceChildren();
      const axis = Object.assign({}, axisOf(0), { map: (x) => x });
      lr = T.charts.make(lrHost, { key: "learning_rate", title: "learning rate (each run in its colour)", tables, xRange: xRange(), sync: "compare", height: 170, axis,
        compact: true, log: values.length && Math.max(...values) / Math.min(...values) > 10, markers: view.axis === "epoch" ? markers([], false) : [] });
    }

    function redraw(what) {
      if (what === "search") layout(); else if (lazy) lazy.redraw();
      drawLr();
    }

    async function load() {
      let result;
      try {
        [details, keysOf, result] = await Promise.all([
          Promise.all(ids.map((id) => T.api("/api/runs/" + id))),
          Promise.all(ids.map((id) => T.api("/api/runs/" + id + "/keys").then((a) => a.keys))),
          T.api("/api/compare" + T.query(ids.map((id) => ["run", id]))),
        ]);
        if (!loaders.length) loaders = ids.map((id, i) => T.curveLoader(id, keysOf[i]));
        metas = await Promise.all(loaders.map((l) => l.probe()));
      } catch (err) {
        main.replaceChildren(T.errorBox(err.message));
        return;
      }
      if (disposed) return;
      names = labels(details);
      const signature = JSON.stringify([details.map((d) => d.run.status), metas.map((m) => m.epoch.length), keysOf]);
      if (signature !== last) {
        const first = !last;
        last = signature;
        loaders = ids.map((id, i) => T.curveLoader(id, keysOf[i]));
        keys = [...new Set(keysOf.flat())].sort();
        const legend = T.el("div", { class: "legend", id: "legend" }, details.map((d, i) => {
          const chip = T.el("span", { class: "chip", "data-run-id": d.run.id }, T.el("span", { class: "swatch" }), T.link(T.runRoute(d.run.id), names[i]), " ", T.statusBadge(d.run.status));
          chip.firstChild.style.background = T.color(i);
          return chip;
        }));
        head.replaceChildren(T.el("h1", null, `Compare ${ids.length} runs`), legend,
          T.el("p", { class: "muted" }, "solid: training keys · dashed: val_ keys · faint ticks: LR changes (the LR panel has them) · dashed lines: early stops · ★: restored epochs · hover a chart for its values"));
        if (first) layout(); else lazy.redraw();
        drawLr();
        tableHost.replaceChildren(T.compareTable(result, details, names));
      }
      const live = T.mode === "server" && details.some((d) => d.run.status === "running");
      main.dataset.live = String(live);
      if (live && !disposed) timer = setTimeout(load, 2000);
    }
    document.title = `compare ${ids.length} runs · tracker`;
    load();
    return () => { disposed = true; clearTimeout(timer); if (lazy) lazy.destroy(); if (lr) lr.destroy(); };
  };
})(window.T);

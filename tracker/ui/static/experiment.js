/* tracker dashboard: one experiment (a sweep): parallel coordinates whose brushes filter the trials
 * table, the value against each param, the best value so far, every trial's curve, and how much each
 * param matters. Draws /api/sweep and /api/sweep/curves (tracker.store.sweeps, .importance,
 * .sweep_plots) and computes nothing of its own beyond pixels and colours. */
"use strict";
(function (T) {
  T.views = T.views || {};
  const P = T.plot;
  const SHOWN = 500;  // table rows drawn at once; brushing narrows the rest
  const TOOLS = { keras_tuner: "KerasTuner", optuna: "Optuna", ray_tune: "Ray Tune" };
  const BEST = "#f04438", PRUNED = "#7a5af8", FAILED = "#d92d20";

  T.experimentRoute = (name) => "/experiments/" + encodeURIComponent(name);

  /* What the value is: the tool's score, or the best epoch value of the metric. */
  function valueLabel(d) {
    if (d.ranked_by !== "score") return "best " + (d.ranked_by || "value");
    return (d.tool === "optuna" ? "value" : "score") + (d.objective ? " (" + d.objective + ")" : "");
  }

  function summary(d) {
    const counts = {};
    d.trials.forEach((t) => { counts[t.status] = (counts[t.status] || 0) + 1; });
    const tool = d.tool ? TOOLS[d.tool] || d.tool : "runs grouped by hand";
    const own = d.tool === "optuna" ? "the study's value" : d.tool === "keras_tuner" ? "the oracle's score"
      : d.tool === "ray_tune" ? "the last reported value" : `${tool}'s score`;
    const how = d.ranked_by === "score" ? `ranked by ${own}` + (d.objective ? ` of ${d.objective}` : "") + ` (${d.direction})`
      : d.ranked_by ? `ranked by the best epoch value of ${d.ranked_by} (${d.importance.direction})` : "nothing ranks them (no metric logged)";
    return T.el("div", { class: "run-head" },
      T.el("h1", { id: "experiment-name" }, d.experiment),
      T.el("span", { class: "muted", id: "experiment-tool" }, tool),
      T.el("span", { class: "muted" }, `${d.trials.length} ${d.tool ? "trials" : "runs"}, ${how}`),
      T.el("span", { class: "status-counts" }, Object.entries(counts).map(([s, c]) => T.el("span", { class: "count-chip" }, T.statusBadge(s), " " + c))));
  }

  /* Each trial's place between the worst (0) and the best (1) value, on the value axis' scale. */
  function shades(d) {
    const axis = d.axes[d.axes.length - 1], t = axis.log ? Math.log10 : (x) => x;
    const high = d.importance.direction === "max";
    const out = new Map();
    for (const trial of d.trials) {
      const v = T.plotNum(trial.objective);
      if (v === null || axis.low === null || (axis.log && v <= 0)) { out.set(trial.trial, null); continue; }
      const span = t(axis.high) - t(axis.low);
      const f = span > 0 ? (t(v) - t(axis.low)) / span : 1;
      out.set(trial.trial, high ? f : 1 - f);
    }
    return out;
  }

  function trialsTable(d, state) {
    const valueKey = valueLabel(d);
    const head = ["rank", "trial", "name", "status", ...d.param_names, valueKey, "best epoch", "epochs", "duration"];
    const rows = d.trials.filter((t) => state.kept.has(t.trial));
    const body = rows.slice(0, SHOWN).map((t) => {
      const run = T.mode === "server" || (T.report && ("/api/runs/" + t.best_run) in T.report)
        ? T.link(T.runRoute(t.best_run), t.name || t.best_run.slice(0, 8), { class: "run-link" }) : (t.name || t.best_run.slice(0, 8));
      return T.el("tr", { "data-trial": t.trial, "data-status": t.status, class: t.rank === 1 ? "best" : null,
        onmouseenter: () => state.highlight(t.trial), onmouseleave: () => state.highlight(null) },
      T.el("td", { class: "num" }, T.fmt(t.rank)), T.el("td", null, t.trial.length > 12 ? t.trial.slice(0, 8) : t.trial),
      T.el("td", { "data-key": "name" }, run), T.el("td", null, T.statusBadge(t.status)),
      d.param_names.map((p) => T.el("td", { class: "param", "data-key": "param:" + p, title: T.exact(t.params[p]) }, T.fmt(t.params[p]))),
      T.el("td", { class: "num", "data-key": "value", title: T.exact(t.objective) }, T.fmt(T.num(t.objective))),
      T.el("td", { class: "num" }, T.fmt(t.best_epoch)), T.el("td", { class: "num" }, String(t.epochs)),
      T.el("td", { class: "num" }, T.duration(t.duration_s)));
    });
    const table = T.el("table", { id: "trials", class: "runs" },
      T.el("thead", null, T.el("tr", null, head.map((h, i) => T.el("th", { class: i >= 4 && i < 4 + d.param_names.length ? "param wrap" : "wrap" }, h)))),
      T.el("tbody", null, body));
    const count = rows.length > SHOWN ? `showing ${SHOWN} of ${rows.length} kept trials (brush to narrow)` : `${rows.length} of ${d.trials.length} trials`;
    return { table, count };
  }

  function importanceTable(imp) {
    const cols = ["param", "kind", "trials", "spearman", "anova (ε²)"].concat(imp.fanova ? ["fANOVA"] : []);
    const bar = (v) => {
      const n = T.plotNum(v);
      const fill = T.el("span", { class: "bar-fill" });
      if (n !== null) fill.style.width = Math.round(Math.abs(n) * 100) + "%";
      return T.el("span", { class: "bar", title: T.exact(v) }, fill, T.el("span", { class: "bar-text" }, T.fmt(n)));
    };
    return T.el("table", { id: "importance", class: "runs" },
      T.el("thead", null, T.el("tr", null, cols.map((c) => T.el("th", null, c)))),
      T.el("tbody", null, imp.params.map((p) => T.el("tr", { "data-param": p.param },
        T.el("td", null, p.param), T.el("td", null, p.kind), T.el("td", { class: "num" }, String(p.trials)),
        T.el("td", { class: "num", "data-key": "spearman" }, bar(p.spearman)), T.el("td", { class: "num", "data-key": "anova" }, bar(p.anova)),
        imp.fanova ? T.el("td", { class: "num", "data-key": "fanova" }, bar(p.fanova)) : null))));
  }

  /* One scatter per param: the value against the param (log x where the param spans more than 10x). */
  function scatter(d, i, shade, state) {
    const axis = d.axes[i], vAxis = d.axes[d.axes.length - 1];
    const w = 300, h = 220, box = { x0: 56, x1: w - 12, y0: 12, y1: h - 30 };
    const fig = P.figure("scatter", `${valueLabel(d)} by ${axis.name}`, { "data-param": axis.name,
      "data-scale-x": axis.kind === "category" ? "category" : axis.log ? "log" : "linear", "data-scale-y": vAxis.log ? "log" : "linear" });
    const { canvas, ctx } = P.canvas(w, h, `${valueLabel(d)} against ${axis.name}`);
    fig.appendChild(canvas);
    const sx = P.scale(axis, box.x0, box.x1), sy = vAxis.low === null ? null : P.scale(vAxis, box.y1, box.y0);
    const band = axis.kind === "category" ? (box.x1 - box.x0) / Math.max(1, axis.categories.length) * 0.5 : 0;
    function draw() {
      ctx.clearRect(0, 0, w, h);
      P.drawAxis(ctx, axis, sx, "bottom", box);
      if (sy) P.drawAxis(ctx, vAxis, sy, "left", box);
      let drawn = 0;
      const order = d.trials.slice().sort((a, b) => (a.rank === 1) - (b.rank === 1));
      for (const t of order) {
        const v = T.plotNum(t.objective), x0 = sx(t.params[axis.name]);
        if (v === null || x0 === null || !sy || sy(v) === null) continue;
        const x = x0 + (band ? P.jitter(t.trial) * band : 0), y = sy(v), keep = state.kept.has(t.trial);
        ctx.beginPath(); ctx.arc(x, y, t.rank === 1 ? 5 : 3, 0, 2 * Math.PI);
        ctx.fillStyle = !keep ? "rgba(152,162,179,0.3)" : t.rank === 1 ? BEST : P.ramp(shade.get(t.trial));
        ctx.fill();
        if (t.rank === 1 || t.trial === state.hl) { ctx.lineWidth = 1.5; ctx.strokeStyle = "#101828"; ctx.stroke(); }
        drawn++;
      }
      fig.dataset.points = String(drawn);
    }
    draw();
    return { box: fig, draw };
  }

  /* The best value so far against the trials' order, with every trial's value as a dot. */
  function progress(d) {
    const vAxis = d.axes[d.axes.length - 1], w = 460, h = 300, box = { x0: 56, x1: w - 12, y0: 12, y1: h - 30 };
    const fig = P.figure("progress", `best ${valueLabel(d)} so far, by trial order`);
    const { canvas, ctx } = P.canvas(w, h, "best value so far by trial order");
    fig.appendChild(canvas);
    const n = d.progress.length, xAxis = { kind: "number", log: false, low: 0, high: Math.max(1, n - 1) };
    const sx = P.scale(xAxis, box.x0, box.x1);
    let dots = 0;
    if (vAxis.low !== null) {
      const sy = P.scale(vAxis, box.y1, box.y0);
      P.drawAxis(ctx, xAxis, sx, "bottom", box);
      P.drawAxis(ctx, vAxis, sy, "left", box);
      ctx.fillStyle = "rgba(102,112,133,0.55)";
      for (const p of d.progress) {
        const v = T.plotNum(p.value);
        if (v === null || sy(v) === null) continue;
        ctx.beginPath(); ctx.arc(sx(p.order), sy(v), 2.5, 0, 2 * Math.PI); ctx.fill(); dots++;
      }
      ctx.strokeStyle = BEST; ctx.lineWidth = 2; ctx.beginPath();
      let open = false, last = null;
      for (const p of d.progress) {
        const b = T.plotNum(p.best);
        if (b === null || sy(b) === null) continue;
        const x = sx(p.order), y = sy(b);
        if (!open) ctx.moveTo(x, y); else ctx.lineTo(x, last);
        ctx.lineTo(x, y); open = true; last = y;
      }
      if (open) ctx.lineTo(sx(xAxis.high), last);
      ctx.stroke();
    }
    fig.dataset.points = String(dots);
    const final = d.progress.length ? d.progress[d.progress.length - 1].best : null;
    fig.dataset.best = final === null ? "" : T.exact(final);
    return fig;
  }

  /* Every trial's curve of the metric: the best thick, pruned trials ending in a ✕, failed ones in a dot. */
  function curves(c, shade, state) {
    const w = 640, h = 300, box = { x0: 60, x1: w - 14, y0: 12, y1: h - 30 };
    const fig = P.figure("curves", `${c.metric || "metric"} of every trial, by epoch (its best run)`, { "data-scale-y": c.log ? "log" : "linear" });
    const { canvas, ctx } = P.canvas(w, h, `${c.metric} of every trial`);
    fig.appendChild(canvas);
    const all = c.curves.flatMap((k) => k.values.map(T.plotNum)).filter((v) => v !== null && (!c.log || v > 0));
    const epochs = c.curves.flatMap((k) => k.epochs);
    if (!all.length) { fig.appendChild(T.el("p", { class: "muted" }, "No trial logged " + (c.metric || "a metric") + ".")); fig.dataset.curves = "0"; return { box: fig, draw() {} }; }
    const xAxis = { kind: "number", log: false, low: Math.min(...epochs), high: Math.max(...epochs) };
    const yAxis = { kind: "number", log: c.log, low: Math.min(...all), high: Math.max(...all) };
    const sx = P.scale(xAxis, box.x0, box.x1), sy = P.scale(yAxis, box.y1, box.y0);
    function path(k) {
      ctx.beginPath();
      let open = false, end = null;
      k.epochs.forEach((e, j) => {
        const v = T.plotNum(k.values[j]), y = v === null ? null : sy(v);
        if (y === null) { open = false; return; }
        if (open) ctx.lineTo(sx(e), y); else ctx.moveTo(sx(e), y);
        open = true; end = [sx(e), y];
      });
      ctx.stroke();
      return end;
    }
    function draw() {
      ctx.clearRect(0, 0, w, h);
      P.drawAxis(ctx, xAxis, sx, "bottom", box);
      P.drawAxis(ctx, yAxis, sy, "left", box);
      let marks = 0, drawn = 0, bestTrial = "";
      const ends = [];
      const order = c.curves.slice().sort((a, b) => (a.rank === 1) - (b.rank === 1));
      for (const k of order) {
        const keep = state.kept.has(k.trial), s = shade.get(k.trial);
        ctx.lineWidth = k.rank === 1 ? 3 : 1.2;
        ctx.strokeStyle = !keep ? "rgba(152,162,179,0.25)" : k.rank === 1 ? BEST : s === null || s === undefined ? "rgba(102,112,133,0.6)" : P.ramp(s);
        if (k.rank === 1) { bestTrial = k.trial; ctx.lineWidth = 5; ctx.strokeStyle = "#101828"; path(k); ctx.lineWidth = 3; ctx.strokeStyle = BEST; }
        const end = path(k);
        if (k.trial === state.hl) { ctx.lineWidth = 3; ctx.strokeStyle = "#101828"; path(k); }
        if (end) drawn++;
        if (end && (k.status === "pruned" || k.status === "failed")) ends.push([k.status, end, keep]);
      }
      for (const [status, [x, y], keep] of ends) {
        ctx.strokeStyle = ctx.fillStyle = keep ? (status === "pruned" ? PRUNED : FAILED) : "rgba(152,162,179,0.5)";
        ctx.lineWidth = 2;
        if (status === "pruned") { ctx.beginPath(); ctx.moveTo(x - 4, y - 4); ctx.lineTo(x + 4, y + 4); ctx.moveTo(x + 4, y - 4); ctx.lineTo(x - 4, y + 4); ctx.stroke(); marks++; }
        else { ctx.beginPath(); ctx.arc(x, y, 3.5, 0, 2 * Math.PI); ctx.fill(); }
      }
      Object.assign(fig.dataset, { curves: String(drawn), prunedMarks: String(marks), best: bestTrial });
    }
    draw();
    fig.appendChild(T.el("p", { class: "muted legend-line" }, "thick red: the best trial · ", T.el("span", { class: "mark-pruned" }, "✕"), " where a pruned trial stopped · ",
      T.el("span", { class: "mark-failed" }, "●"), " where a failed one did · colour: its value, dark blue (worst) to yellow (best)"));
    return { box: fig, draw };
  }

  T.views.experiment = function (main, name) {
    let disposed = false;
    main.dataset.view = "experiment";
    document.title = name + " · experiment · tracker";
    main.replaceChildren(T.el("p", { class: "loading" }, "Loading the experiment…"));
    const q = T.query([["experiment", name]]);
    Promise.all([T.api("/api/sweep" + q), T.api("/api/sweep/curves" + q)]).then(([d, c]) => {
      if (disposed) return;
      const shade = shades(d);
      const state = { kept: new Set(d.trials.map((t) => t.trial)), hl: null, highlight: null };
      const count = T.el("span", { class: "count", id: "trial-count" });
      const tableHost = T.el("div", { class: "table-wrap trials-wrap" });
      const impHost = T.el("div", { class: "table-wrap importance-wrap" }, importanceTable(d.importance));
      const plots = [];
      const redrawAll = () => plots.forEach((p) => p.draw());
      function drawTable() {
        const { table, count: text } = trialsTable(d, state);
        tableHost.replaceChildren(table);
        count.textContent = text;
      }
      const clear = T.el("button", { type: "button", id: "clear-brushes" }, "Clear filters");
      const parHost = T.el("section", { class: "parallel-host" });
      const scatters = T.el("div", { class: "xplots" });
      const lower = T.el("div", { class: "xplots" });
      const fanova = T.el("button", { type: "button", id: "fanova", hidden: T.mode !== "server" || d.importance.fanova || !d.param_names.length }, "Compute fANOVA (Optuna)");
      const impNote = T.el("p", { class: "muted", id: "importance-note" },
        `Over the ${d.importance.trials} trials with a value: spearman is the rank correlation of a param with the value (its sign is the value's); ` +
        "anova (ε²) the share of the value's variance the param explains alone; fANOVA, Optuna's random-forest estimate, on request (needs optuna and scikit-learn).");
      main.replaceChildren(summary(d),
        T.el("p", { class: "muted" }, T.link("/", "all runs"), " · colour: a trial's value, dark blue (worst) to yellow (best); thick red: the best trial; dashed: trials with no value (pruned, failed, running)"),
        parHost, T.el("div", { class: "toolbar" }, T.el("strong", null, "Trials, best first"), count, clear), tableHost,
        T.el("h2", { id: "importance-title" }, "How much each param matters"), impNote, T.el("div", { class: "toolbar" }, fanova), impHost,
        T.el("h2", null, valueLabel(d) + " by param"), scatters,
        T.el("h2", null, "Progress and curves"), lower);
      const axes = d.axes.filter((a, i) => i < d.param_names.length || a.low !== null || a.categories.length);
      const par = axes.length > 1 ? T.parallel(parHost, {
        axes, labels: axes.map((a, i) => (i < d.param_names.length ? a.name : valueLabel(d))),
        trials: d.trials.map((t) => ({ trial: t.trial, best: t.rank === 1, shade: shade.get(t.trial),
          values: axes.map((a, i) => (i < d.param_names.length ? (t.params[a.name] === undefined ? null : t.params[a.name]) : T.plotNum(t.objective))) })),
        onChange: (kept) => { state.kept = kept; drawTable(); redrawAll(); },
      }) : null;
      if (!par) parHost.appendChild(T.el("p", { class: "muted" }, "No params vary between these trials: nothing to draw in parallel coordinates."));
      state.highlight = (trial) => { state.hl = trial; if (par) par.draw(trial); redrawAll(); };
      d.param_names.forEach((p, i) => { const s = scatter(d, i, shade, state); scatters.appendChild(s.box); plots.push(s); });
      lower.appendChild(progress(d));
      const curve = curves(c, shade, state);
      lower.appendChild(curve.box);
      plots.push(curve);
      clear.addEventListener("click", () => (par ? par.clear() : null));
      fanova.addEventListener("click", async () => {
        fanova.disabled = true;
        fanova.textContent = "Computing fANOVA…";
        try {
          const more = await T.api("/api/sweep" + T.query([["experiment", name], ["fanova", "1"]]));
          impHost.replaceChildren(importanceTable(more.importance));
          fanova.hidden = true;
        } catch (err) {
          impHost.prepend(T.errorBox(err.message));
          fanova.textContent = "Compute fANOVA (Optuna)";
          fanova.disabled = false;
        }
      });
      drawTable();
      main.dataset.drawn = "true";
    }).catch((err) => { if (!disposed) main.replaceChildren(T.errorBox(err.message)); });
    return () => { disposed = true; };
  };
})(window.T);

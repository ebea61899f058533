/* tracker dashboard: the runs table's columns, from one /api/table answer.
 *
 * Each column: key (what /api/table sorts by; null when it cannot sort),
 * head (text or nodes), num (right-aligned under a right-aligned header),
 * cell(run) -> text or node. Params are marked as params; times say UTC;
 * the best column says which metric and why.
 */
"use strict";
(function (T) {
  /* A key that may wrap after its underscores and slashes (a zero-width space after each). */
  const breakable = (key) => key.replace(/([_/])/g, "$1\u200b");

  /* Seconds from start to end; a running run's so far. */
  T.runDuration = function (r) {
    if (r.duration_s !== null && r.duration_s !== undefined) return r.duration_s;
    return r.status === "running" && r.started_at ? Math.max(0, (Date.now() - T.date(r.started_at)) / 1000) : null;
  };

  const number = (v) => (T.num(v) !== null ? T.fmt(T.num(v)) : T.fmt(v));
  const numeric = (values) => values.length > 0 && values.every((v) => v === null || v === undefined || T.num(v) !== null);

  T.runColumns = function (answer) {
    const runs = answer.runs, metric = answer.metric;
    const cols = [
      { key: "name", head: "name", cell: (r) => T.link(T.runRoute(r.run_id), r.name || r.run_id.slice(0, 8), { class: "run-link" }) },
      { key: "status", head: "status", cell: (r) => T.statusBadge(r.status) },
      { key: "started_at", head: ["started ", T.el("span", { class: "unit" }, "UTC")], title: "start time in UTC (Z), as the CLI prints it",
        cell: (r) => T.el("span", { title: T.time(r.started_at) }, T.time(r.started_at).slice(0, 16) + "Z") },
      { key: "duration", head: "duration", num: true, cell: (r) => T.duration(T.runDuration(r)) },
      { key: "epochs", head: "epochs", num: true, cell: (r) => T.fmt(r.epochs) },
    ];
    if (runs.some((r) => r.experiment)) cols.push({ key: "experiment", head: "experiment", cell: (r) => r.experiment || "—" });
    for (const p of answer.params || []) {
      cols.push({
        key: "param:" + p, param: true, wrap: true, num: numeric(runs.map((r) => r.params[p])),
        head: [T.el("span", { class: "kind" }, "param"), T.el("br"), breakable(p)], title: "param " + p + " (differs between the runs)",
        cell: (r) => T.el("span", { title: T.exact(r.params[p]) }, number(r.params[p])),
      });
    }
    if (metric) {
      const direction = answer.maximised ? "max" : "min";
      cols.push({
        key: "best", num: true, wrap: true, head: [T.el("span", { class: "kind" }, "best " + direction), T.el("br"), breakable(metric)],
        title: `best (${direction}) ${metric}: ${answer.metric_reason}`,
        cell: (r) => T.el("span", { title: T.exact(r.best) + (r.best_epoch !== null ? " at epoch " + r.best_epoch : "") },
          number(r.best), r.best_epoch !== null && r.best_epoch !== undefined ? T.el("span", { class: "at-epoch" }, " @" + r.best_epoch) : null,
          r.monitor && r.monitor !== metric ? T.el("span", { class: "monitor-note", title: `this run's early stopper monitored ${r.monitor}` }, " (monitored " + r.monitor + ")") : null),
      });
    }
    for (const k of (answer.evaluate || []).slice(0, 4)) {
      const value = (r) => (r.evaluate && k in r.evaluate ? r.evaluate[k] : null);
      cols.push({ key: null, num: true, wrap: true, head: [T.el("span", { class: "kind" }, "evaluate"), T.el("br"), breakable(k)],
        title: "the run's last evaluate call", cell: (r) => T.el("span", { title: T.exact(value(r)) }, number(value(r))) });
    }
    cols.push({ key: "stopped_epoch", head: "stopped", num: true, title: "the epoch an early stopper stopped at", cell: (r) => T.fmt(r.stopped_epoch) });
    cols.push({ key: "restored_epoch", head: "restored", num: true, title: "the epoch whose weights were restored", cell: (r) => T.fmt(r.restored_epoch) });
    return cols;
  };

  /* The signature of a row: redrawn only when it changes. */
  T.rowSignature = (r, selected) => JSON.stringify([r, selected, r.status === "running" ? Math.floor(T.runDuration(r)) : 0]);
})(window.T);

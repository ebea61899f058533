/* tracker dashboard: the compare table as a diff. One row per field, labelled for people, only the
 * rows whose values differ between the runs (a button shows the rest), the best value of each
 * metric row highlighted, and no noise rows (the best and final of the learning rate itself: the
 * LR rows say where it started and ended). */
"use strict";
(function (T) {
  const LR_KEY = /^(val_)?(lr|learning_rate)$/;
  const PLAIN = {
    status: "status", duration_s: "duration", epochs: "epochs", stopped_epoch: "stopped at epoch",
    restored_epoch: "restored the weights of epoch", lr_start: "learning rate at start", lr_end: "learning rate at the end",
    resumed_at_epoch: "resumed at epoch", experiment: "experiment",
  };
  const MAXIMISED = /acc|auc|precision|recall|f1|iou|r2|top_k|dice|map|score/i;
  /* As tracker.store.filters.maximised: larger is better for accuracy, AUC, recall... */
  T.maximised = (key) => MAXIMISED.test(key.replace(/^val_/, ""));

  /* The rows to show: [{label, kind, cells: [{value, shown, title}], better: "min"|"max"|null}]. */
  function rows(result, ids) {
    const byId = Object.fromEntries(result.rows.map((r) => [r.run_id, r]));
    const runs = ids.map((id) => byId[id] || {});
    const out = [];
    for (const c of result.columns) {
      if (["run_id", "name", "started_at"].includes(c) || /^(best_epoch|final_epoch):/.test(c)) continue;
      const [kind, ...rest] = c.split(":");
      const key = rest.join(":");
      if ((kind === "best" || kind === "final") && LR_KEY.test(key)) continue;
      let label, better = null, cells;
      if (kind === "param") label = [T.el("span", { class: "kind" }, "param "), key];
      else if (kind === "best" || kind === "final") {
        label = [T.el("span", { class: "kind" }, kind + " "), key];
        better = T.maximised(key) ? "max" : "min";
      } else if (kind === "eval") {
        label = [T.el("span", { class: "kind" }, "evaluate "), key];
        better = T.maximised(key) ? "max" : "min";
      } else label = PLAIN[c] || c;
      cells = runs.map((r) => {
        const v = r[c];
        const epoch = kind === "best" || kind === "final" ? r[kind + "_epoch:" + key] : null;
        const shown = c === "duration_s" ? T.duration(v) : c === "status" ? T.statusBadge(v) :
          T.fmt(T.num(v) !== null ? T.num(v) : v) + (epoch !== null && epoch !== undefined && v !== null && v !== undefined ? ` @${epoch}` : "");
        return { value: v, shown, title: T.exact(v) + (epoch !== null && epoch !== undefined ? ` at epoch ${epoch}` : "") };
      });
      const distinct = new Set(cells.map((x) => JSON.stringify(x.value === undefined ? null : x.value)));
      out.push({ label, kind, cells, better, same: distinct.size <= 1, id: c });
    }
    return out;
  }

  T.compareTable = function (result, details, names) {
    const ids = details.map((d) => d.run.id);
    const all = rows(result, ids);
    const same = all.filter((r) => r.same).length;
    const head = T.el("tr", null, T.el("th", null, "field"), details.map((d, i) => {
      const th = T.el("th", { class: "run-col num" }, T.el("span", { class: "swatch" }), T.link(T.runRoute(d.run.id), names[i]));
      th.firstChild.style.background = T.color(i);
      return th;
    }));
    const body = all.map((r) => {
      const numbers = r.cells.map((c) => T.num(c.value)).filter((n) => n !== null && Number.isFinite(n));
      const target = r.better && numbers.length > 1 ? (r.better === "max" ? Math.max(...numbers) : Math.min(...numbers)) : null;
      return T.el("tr", { class: (r.kind === "param" ? "param-row" : r.better ? "metric-row" : "") + (r.same ? " same" : ""), "data-field": r.id, hidden: r.same },
        T.el("th", { scope: "row", title: r.better ? `${r.id}: ${r.better === "max" ? "larger" : "smaller"} is better` : r.id }, r.label),
        r.cells.map((c) => T.el("td", { class: "num" + (target !== null && T.num(c.value) === target ? " best-value" : ""), title: c.title }, c.shown)));
    });
    const table = T.el("table", { class: "compare", id: "compare-table" }, T.el("thead", null, head), T.el("tbody", null, body));
    const toggle = T.el("button", { type: "button", id: "show-same", class: "link-button", hidden: !same },
      `show the ${T.plural(same, "row")} where every run has the same value`);
    toggle.addEventListener("click", () => {
      const show = toggle.dataset.shown !== "true";
      toggle.dataset.shown = String(show);
      table.querySelectorAll("tr.same").forEach((tr) => { tr.hidden = !show; });
      toggle.textContent = show ? "hide the rows where every run has the same value" : `show the ${T.plural(same, "row")} where every run has the same value`;
    });
    const differ = all.length - same;
    return T.el("div", null, T.el("h2", null, "What differs between the runs"),
      T.el("p", { class: "muted" }, `${T.plural(differ, "row")} differ; best value of each metric row highlighted (min or max by the metric); `, toggle),
      T.el("div", { class: "table-wrap" }, table));
  };
})(window.T);

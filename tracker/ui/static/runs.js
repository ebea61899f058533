/* tracker dashboard: the runs table (sortable, filterable, select to compare, live). */
"use strict";
(function (T) {
  T.views = T.views || {};
  const SHOWN = 500;  // rows drawn at once; the filter narrows the rest

  /* A key that may wrap after its underscores and slashes (a zero-width space after each). */
  const breakable = (key) => key.replace(/([_/])/g, "$1\u200b");

  function columns(runs, metric) {
    const params = [...new Set(runs.flatMap((r) => Object.keys(r.params || {})))].sort();
    const cols = [
      { key: "name", label: "name", get: (r) => r.name || "", cell: (r) => T.link(T.runRoute(r.run_id), r.name || r.run_id.slice(0, 8), { class: "run-link" }) },
      { key: "status", label: "status", get: (r) => r.status, cell: (r) => T.statusBadge(r.status) },
      { key: "started_at", label: "started", get: (r) => r.started_at || "", cell: (r) => T.el("span", { title: T.time(r.started_at) }, T.time(r.started_at).slice(0, 16)) },
      { key: "duration_s", label: "duration", num: true, get: duration, cell: (r) => T.duration(duration(r)) },
      { key: "epochs", label: "epochs", num: true, get: (r) => r.epochs, cell: (r) => String(r.epochs) },
    ];
    for (const p of params) {
      cols.push({ key: "param:" + p, label: breakable(p), param: true, wrap: true, get: (r) => sortable(r.params[p]), cell: (r) => T.fmt(r.params[p]) });
    }
    if (metric) {
      cols.push({ key: "best", label: "best " + breakable(metric), num: true, wrap: true, get: (r) => T.num(r.best),
        cell: (r) => T.el("span", { title: T.exact(r.best) + (r.best_epoch !== null ? " at epoch " + r.best_epoch : "") },
          T.fmt(T.num(r.best) !== null ? T.num(r.best) : r.best),
          r.best_epoch !== null ? T.el("span", { class: "at-epoch" }, " @" + r.best_epoch) : null) });
    }
    const evaluated = [...new Set(runs.flatMap((r) => Object.keys(r.evaluate || {})))].sort().slice(0, 4);
    for (const k of evaluated) {
      const value = (r) => (r.evaluate && k in r.evaluate ? r.evaluate[k] : null);
      cols.push({ key: "evaluate:" + k, label: "evaluate " + breakable(k), num: true, wrap: true, get: (r) => T.num(value(r)),
        cell: (r) => T.el("span", { title: T.exact(value(r)) }, T.fmt(T.num(value(r)) !== null ? T.num(value(r)) : value(r))) });
    }
    cols.push({ key: "stopped_epoch", label: "stopped", num: true, get: (r) => r.stopped_epoch, cell: (r) => T.fmt(r.stopped_epoch) });
    cols.push({ key: "restored_epoch", label: "restored", num: true, get: (r) => r.restored_epoch, cell: (r) => T.fmt(r.restored_epoch) });
    return cols;
  }

  /* Seconds from start to end; a running run's so far. */
  function duration(r) {
    if (r.duration_s !== null && r.duration_s !== undefined) return r.duration_s;
    return r.status === "running" && r.started_at ? Math.max(0, (Date.now() - T.date(r.started_at)) / 1000) : null;
  }

  function sortable(v) {
    const n = T.num(v);
    return n !== null ? n : (v === null || v === undefined ? null : JSON.stringify(v));
  }

  function compare(a, b) {
    if (a === null || a === undefined || (typeof a === "number" && Number.isNaN(a))) return 1;
    if (b === null || b === undefined || (typeof b === "number" && Number.isNaN(b))) return -1;
    if (typeof a === "number" && typeof b === "number") return a - b;
    return String(a).localeCompare(String(b));
  }

  function matches(run, text) {
    if (!text) return true;
    const hay = [run.name, run.run_id, run.status, ...Object.entries(run.params || {}).map(([k, v]) => k + "=" + JSON.stringify(v))]
      .join(" ").toLowerCase();
    return text.toLowerCase().split(/\s+/).every((word) => hay.includes(word));
  }

  T.views.runs = function (main) {
    const state = { sort: "started_at", dir: -1, filter: "", status: "", metric: null, selected: new Set(), runs: [], keys: [] };
    let timer = null, disposed = false;
    const filter = T.el("input", { type: "search", id: "filter", placeholder: "filter: name, id, param=value…", "aria-label": "filter runs" });
    const status = T.el("select", { id: "status-filter", "aria-label": "status" },
      ["", "running", "finished", "failed", "interrupted", "crashed"].map((s) => T.el("option", { value: s }, s || "any status")));
    const metric = T.el("select", { id: "metric", "aria-label": "metric for best", disabled: T.mode === "report",
      title: T.mode === "report" ? "a report holds the best values of this metric only" : null });
    const compareButton = T.el("button", { id: "compare", type: "button", disabled: true }, "Compare");
    const count = T.el("span", { class: "count", id: "count" });
    const table = T.el("table", { id: "runs", class: "runs" });
    const notice = T.el("p", { class: "notice", hidden: true });
    main.replaceChildren(
      T.el("div", { class: "toolbar" }, filter, status, T.el("label", null, "best ", metric), compareButton, count),
      notice, T.el("div", { class: "table-wrap" }, table));

    function draw() {
      const cols = columns(state.runs, state.metric);
      const col = cols.find((c) => c.key === state.sort) || cols[2];
      const rows = state.runs.filter((r) => (!state.status || r.status === state.status) && matches(r, state.filter));
      rows.sort((a, b) => {
        const av = col.get(a), bv = col.get(b);
        if (av === null || av === undefined) return 1;
        if (bv === null || bv === undefined) return -1;
        return state.dir * compare(av, bv);
      });
      const head = T.el("tr", null, T.el("th", { class: "select" }, ""), cols.map((c) => T.el("th", {
        class: (c.num ? "num " : "") + (c.param ? "param " : "") + (c.wrap ? "wrap " : "") + (c.key === state.sort ? "sorted " + (state.dir > 0 ? "asc" : "desc") : ""),
        "data-key": c.key, tabindex: "0", role: "columnheader", "aria-sort": c.key === state.sort ? (state.dir > 0 ? "ascending" : "descending") : "none",
        onclick: () => { state.dir = state.sort === c.key ? -state.dir : (c.num ? 1 : -1); state.sort = c.key; draw(); },
        onkeydown: (ev) => { if (ev.key === "Enter") ev.target.click(); },
      }, c.label)));
      const body = rows.slice(0, SHOWN).map((r) => T.el("tr", { "data-run-id": r.run_id, "data-status": r.status, class: state.selected.has(r.run_id) ? "selected" : "" },
        T.el("td", { class: "select" }, T.el("input", {
          type: "checkbox", "aria-label": "select " + (r.name || r.run_id), checked: state.selected.has(r.run_id),
          onchange: (ev) => { ev.target.checked ? state.selected.add(r.run_id) : state.selected.delete(r.run_id); draw(); },
        })),
        cols.map((c) => T.el("td", { class: (c.num ? "num" : "") + (c.param ? " param" : ""), "data-key": c.key }, c.cell(r)))));
      table.replaceChildren(T.el("thead", null, head), T.el("tbody", null, body));
      count.textContent = rows.length > SHOWN ? `showing ${SHOWN} of ${rows.length} runs (filter to narrow)` :
        `${rows.length} of ${state.runs.length} runs`;
      const n = state.selected.size;
      compareButton.disabled = n < 2;
      compareButton.textContent = n ? `Compare ${n} selected` : "Compare (select runs)";
    }

    async function load() {
      try {
        let keys = null;
        if (!state.keys.length || T.mode === "server") {
          keys = await T.api("/api/keys");
          if (keys.database) document.getElementById("database").textContent = keys.database;
        }
        const answer = await T.api("/api/runs" + (T.mode === "report" ? "" : T.query(state.metric ? [["metric", state.metric]] : [])));
        state.runs = answer;  // one object per run, newest first
        /* Without a choice, the server picks the metric (the stoppers' monitor, else val_loss...). */
        const chosen = state.metric || answer.map((r) => r.metric).find((m) => m) || null;  // else the server's default
        if (keys && (JSON.stringify(keys.keys) !== JSON.stringify(state.keys) || chosen !== state.metric)) {
          state.keys = keys.keys;
          metric.replaceChildren(...state.keys.map((k) => T.el("option", { value: k, selected: k === chosen }, k)));
        }
        state.metric = chosen;
        notice.hidden = true;
        draw();
      } catch (err) {
        notice.hidden = false;
        notice.textContent = "Could not load the runs: " + err.message;
      }
      schedule();
    }

    function schedule() {
      if (disposed || T.mode === "report") return;
      const live = state.runs.some((r) => r.status === "running");
      main.dataset.live = String(live);
      timer = setTimeout(load, live ? 1500 : 10000);
    }

    filter.addEventListener("input", () => { state.filter = filter.value; draw(); });
    status.addEventListener("change", () => { state.status = status.value; draw(); });
    metric.addEventListener("change", () => { state.metric = metric.value; clearTimeout(timer); load(); });
    compareButton.addEventListener("click", () => T.navigate(T.compareRoute([...state.selected])));
    load();
    return () => { disposed = true; clearTimeout(timer); };
  };
})(window.T);

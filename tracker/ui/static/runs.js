/* tracker dashboard: the runs table. One page of runs at a time, filtered by the filter language and
 * sorted on the server (/api/table); select runs on any page to compare; live: the page asks for
 * changes with the version it shows and redraws only the rows that changed. */
"use strict";
(function (T) {
  T.views = T.views || {};
  const PAGE = 100;
  const HELP = "Fields: best.KEY, final.KEY, params.NAME, tags.NAME, status, name, experiment, started_at (2026-01-31, -7d), " +
    "duration (90, 15m, 2h). Operators: = != < <= > >= and ~ (glob: * any text, ? one character). Combine with and, or, not, ( ).";

  T.views.runs = function (main) {
    const state = { sort: "started_at", desc: true, where: "", status: "", experiment: "", metric: null, offset: 0,
      selected: new Map(), answer: null, version: null, rows: new Map(), keys: null };
    let timer = null, disposed = false, typing = null, asked = 0;
    const filter = T.el("input", { type: "search", id: "filter", "aria-label": "filter runs", spellcheck: "false",
      placeholder: T.mode === "report" ? "filter: words in names and params" : "filter: best.val_loss < 0.2 and params.lr >= 1e-3" });
    const filterError = T.el("p", { class: "filter-error", id: "filter-error", role: "alert", hidden: true });
    const help = T.el("p", { class: "muted filter-help", id: "filter-help" },
      T.mode === "report" ? "In a report the filter matches words in run names, ids and params; the filter language needs tracker ui." : HELP);
    const status = T.el("select", { id: "status-filter", "aria-label": "status" },
      ["", "running", "finished", "failed", "interrupted", "pruned", "crashed"].map((s) => T.el("option", { value: s }, s || "any status")));
    const experiment = T.el("select", { id: "experiment-filter", "aria-label": "experiment", hidden: true });
    const experimentLink = T.el("a", { id: "experiment-link", class: "experiment-link", hidden: true }, "experiment page");
    const metric = T.el("select", { id: "metric", "aria-label": "metric for best", disabled: T.mode === "report",
      title: T.mode === "report" ? "a report holds the best values of this metric only" : null });
    const compareButton = T.el("button", { id: "compare", type: "button", disabled: true }, "Compare");
    const count = T.el("span", { class: "count", id: "count" });
    const pager = T.el("div", { class: "pager", id: "pager" });
    const table = T.el("table", { id: "runs", class: "runs" });
    const notice = T.el("p", { class: "notice", hidden: true });
    main.replaceChildren(
      T.el("div", { class: "toolbar" }, filter, status, experiment, experimentLink, T.el("label", null, "best ", metric), compareButton, count),
      filterError, help, notice, T.el("div", { class: "table-wrap" }, table), pager);

    function query(extra) {
      const q = [["sort", state.sort], ["order", state.desc ? "desc" : "asc"], ["offset", String(state.offset)], ["limit", String(PAGE)]];
      if (state.where) q.push(["where", state.where]);
      if (state.status) q.push(["status", state.status]);
      if (state.experiment) q.push(["experiment", state.experiment]);
      if (state.metric) q.push(["metric", state.metric]);
      return "/api/table" + T.query(q.concat(extra || []));
    }

    function header(cols) {
      return T.el("tr", null, T.el("th", { class: "select" }, ""), cols.map((c) => {
        const sorted = c.key !== null && c.key === state.sort;
        return T.el("th", {
          class: (c.num ? "num " : "") + (c.param ? "param " : "") + (c.wrap ? "wrap " : "") + (sorted ? "sorted " + (state.desc ? "desc" : "asc") : ""),
          "data-key": c.key || "", title: c.title || null, tabindex: c.key ? "0" : null,
          "aria-sort": sorted ? (state.desc ? "descending" : "ascending") : "none",
          onclick: c.key ? () => {
            state.desc = state.sort === c.key ? !state.desc : (c.key === "best" ? !!(state.answer && state.answer.maximised) : !c.num || c.key === "started_at");
            state.sort = c.key; state.offset = 0; refresh(true);
          } : null,
          onkeydown: (ev) => { if (ev.key === "Enter") ev.target.click(); },
        }, c.head);
      }));
    }

    function row(r, cols) {
      const selected = state.selected.has(r.run_id);
      const signature = T.rowSignature(r, selected) + cols.length;
      const old = state.rows.get(r.run_id);
      if (old && old.signature === signature) return old.node;
      const node = T.el("tr", { "data-run-id": r.run_id, "data-status": r.status, class: selected ? "selected" : "" },
        T.el("td", { class: "select" }, T.el("input", {
          type: "checkbox", "aria-label": "select " + (r.name || r.run_id), checked: selected,
          onchange: (ev) => { ev.target.checked ? state.selected.set(r.run_id, r.name) : state.selected.delete(r.run_id); draw(); },
        })),
        cols.map((c) => T.el("td", { class: (c.num ? "num" : "") + (c.param ? " param" : ""), "data-key": c.key || "" }, c.cell(r))));
      state.rows.set(r.run_id, { signature, node });
      return node;
    }

    let shownColumns = "";
    function draw() {
      const answer = state.answer;
      if (!answer) return;
      const cols = T.runColumns(answer);
      const columnsKey = JSON.stringify([cols.map((c) => c.key + c.title), state.sort, state.desc]);
      if (columnsKey !== shownColumns) { state.rows.clear(); shownColumns = columnsKey; }
      let head = table.tHead, body = table.tBodies[0];
      if (!head || state.rows.size === 0) {
        head = T.el("thead", null, header(cols));
        body = T.el("tbody");
        table.replaceChildren(head, body);
      }
      const nodes = answer.runs.map((r) => row(r, cols));
      const keep = new Set(answer.runs.map((r) => r.run_id));
      for (const id of [...state.rows.keys()]) if (!keep.has(id)) state.rows.delete(id);
      /* Put the rows in order, moving only what moved. */
      nodes.forEach((node, i) => { if (body.children[i] !== node) body.insertBefore(node, body.children[i] || null); });
      while (body.children.length > nodes.length) body.lastChild.remove();
      const first = answer.total ? answer.offset + 1 : 0, last = answer.offset + answer.runs.length;
      count.textContent = answer.total ? `runs ${first.toLocaleString("en")}–${last.toLocaleString("en")} of ${answer.total.toLocaleString("en")}` : "no runs match";
      const n = state.selected.size;
      compareButton.disabled = n < 2 || n > 20;
      compareButton.textContent = n ? `Compare ${n} selected` + (n > 20 ? " (at most 20)" : "") : "Compare (select runs)";
      drawPager(answer);
    }

    function drawPager(answer) {
      const pages = Math.max(1, Math.ceil(answer.total / PAGE)), page = Math.floor(answer.offset / PAGE) + 1;
      const go = (p) => () => { state.offset = (p - 1) * PAGE; refresh(true); };
      pager.replaceChildren(
        T.el("button", { type: "button", id: "page-first", disabled: page <= 1, onclick: go(1) }, "« first"),
        T.el("button", { type: "button", id: "page-prev", disabled: page <= 1, onclick: go(page - 1) }, "‹ previous"),
        T.el("span", { class: "count", id: "page-number" }, `page ${page} of ${pages}`),
        T.el("button", { type: "button", id: "page-next", disabled: page >= pages, onclick: go(page + 1) }, "next ›"),
        T.el("button", { type: "button", id: "page-last", disabled: page >= pages, onclick: go(pages) }, "last »"));
      pager.hidden = pages <= 1;
    }

    async function choices() {
      const keys = await T.api("/api/keys");
      if (keys.database) document.getElementById("database").textContent = keys.database;
      if (JSON.stringify(keys.keys) !== JSON.stringify(state.keys)) {
        state.keys = keys.keys;
        metric.replaceChildren(...state.keys.map((k) => T.el("option", { value: k, selected: k === state.metric }, k)));
      }
      if (T.mode === "server") {
        const found = (await T.api("/api/experiments")).experiments.map((e) => e.experiment);
        experiment.replaceChildren(T.el("option", { value: "" }, "any experiment"),
          ...found.map((e) => T.el("option", { value: e, selected: e === state.experiment }, e)));
        experiment.hidden = !found.length;
        linkExperiment();
      }
    }

    /* Ask for the page; `fresh`: the question changed, so no version is sent. */
    async function refresh(fresh) {
      clearTimeout(timer);
      const mine = ++asked;
      try {
        const answer = await T.api(query(fresh || !state.version ? [] : [["since", state.version]]));
        /* The keys and experiments for the pickers are asked once the page is in (the server answers the
         * page first) and filled in after the rows are drawn. */
        const options = state.keys ? null : choices();
        if (mine !== asked || disposed) return;
        filterError.hidden = true;
        filter.removeAttribute("aria-invalid");
        notice.hidden = true;
        if (!answer.unchanged) {
          if (state.version && answer.version !== state.version) await choices();  /* new keys or experiments */
          state.answer = answer;
          state.version = answer.version;
          main.dataset.total = String(answer.total);
          draw();
        }
        if (options) await options;
        if (mine !== asked || disposed) return;
        if (!answer.unchanged && !state.metric && answer.metric) {
          [...metric.options].forEach((o) => { o.selected = o.value === answer.metric; });
        }
      } catch (err) {
        if (mine !== asked || disposed) return;
        if (state.where && /filter/.test(err.message)) {
          filterError.hidden = false;
          filterError.textContent = err.message;
          filter.setAttribute("aria-invalid", "true");
        } else {
          notice.hidden = false;
          notice.textContent = "Could not load the runs: " + err.message;
        }
      }
      schedule();
    }

    function schedule() {
      if (disposed || T.mode === "report") return;
      const live = !!state.answer && state.answer.runs.some((r) => r.status === "running");
      main.dataset.live = String(live);
      timer = setTimeout(() => refresh(false), live ? 1500 : 5000);
    }

    filter.addEventListener("input", () => {
      clearTimeout(typing);
      typing = setTimeout(() => { if (filter.value.trim() !== state.where) { state.where = filter.value.trim(); state.offset = 0; refresh(true); } }, 350);
    });
    filter.addEventListener("keydown", (ev) => {
      if (ev.key !== "Enter") return;
      clearTimeout(typing);
      state.where = filter.value.trim(); state.offset = 0; refresh(true);
    });
    status.addEventListener("change", () => { state.status = status.value; state.offset = 0; refresh(true); });
    experiment.addEventListener("change", () => { state.experiment = experiment.value; state.offset = 0; linkExperiment(); refresh(true); });

    /* The chosen experiment's page (its sweep view), beside the filter. */
    function linkExperiment() {
      experimentLink.hidden = !state.experiment || (T.mode === "report" && !T.report["/api/sweep" + T.query([["experiment", state.experiment]])]);
      if (experimentLink.hidden) return;
      const route = T.experimentRoute(state.experiment);
      experimentLink.href = T.href(route);
      experimentLink.dataset.route = route;
    }
    metric.addEventListener("change", () => { state.metric = metric.value; refresh(true); });
    compareButton.addEventListener("click", () => T.navigate(T.compareRoute([...state.selected.keys()])));
    document.title = "runs · tracker";
    refresh(true);
    return () => { disposed = true; clearTimeout(timer); clearTimeout(typing); };
  };
})(window.T);

/* tracker dashboard: in a static report, the answers the server would give, derived from the ones
 * the report holds: a page of the runs table (filtered by words, sorted, cut), the curves of some
 * keys of a run, and the compare table of any subset of the report's runs. */
"use strict";
(function (T) {
  if (!T.report) return;

  function split(path) {
    const [route, search] = path.split("?");
    return [route, new URLSearchParams(search || "")];
  }

  function sortValue(r, sort) {
    if (sort === "duration") return T.runDuration(r);
    if (sort === "best") return T.num(r.best);
    if (sort.startsWith("param:")) {
      const v = r.params[sort.slice(6)];
      return v === null || v === undefined ? null : (T.num(v) !== null ? T.num(v) : JSON.stringify(v));
    }
    return r[sort] === undefined ? null : r[sort];
  }

  function table(q) {
    const meta = T.report.table || {};
    const words = (q.get("where") || "").toLowerCase().split(/\s+/).filter((w) => w);
    const sort = q.get("sort") || "started_at", desc = q.get("order") !== "asc";
    const offset = Number(q.get("offset") || 0), limit = Number(q.get("limit") || 100), status = q.get("status");
    let runs = T.report["/api/runs"].filter((r) => (!status || r.status === status) && words.every((w) =>
      [r.name, r.run_id, r.status, ...Object.entries(r.params || {}).map(([k, v]) => k + "=" + JSON.stringify(v))].join(" ").toLowerCase().includes(w)));
    const present = runs.filter((r) => sortValue(r, sort) !== null && !Number.isNaN(sortValue(r, sort)));
    present.sort((a, b) => {
      const x = sortValue(a, sort), y = sortValue(b, sort);
      const c = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
      return desc ? -c : c;
    });
    runs = present.concat(runs.filter((r) => !present.includes(r)));
    const params = [...new Set(T.report["/api/runs"].flatMap((r) => Object.keys(r.params || {})))].sort();
    const evaluate = [...new Set(T.report["/api/runs"].flatMap((r) => Object.keys(r.evaluate || {})))].sort();
    return { total: runs.length, offset, limit, sort, descending: desc, version: "report", metric: meta.metric || null,
      metric_reason: meta.metric_reason || "", maximised: !!meta.maximised, params, evaluate, runs: runs.slice(offset, offset + limit) };
  }

  function curves(route, q) {
    const all = T.report[route];
    if (!all) return undefined;
    const keys = q.getAll("key");
    if (!keys.length) return all;
    const values = {};
    for (const k of keys) values[k] = k in all.values ? all.values[k] : all.epoch.map(() => null);
    return Object.assign({}, all, { values });
  }

  function compare(q) {
    const all = T.report["/api/compare"];
    const ids = q.getAll("run");
    if (!all || !ids.every((id) => all.rows.some((r) => r.run_id === id))) return undefined;
    return { columns: all.columns, rows: ids.map((id) => all.rows.find((r) => r.run_id === id)) };
  }

  T.reportAnswer = function (path) {
    const [route, q] = split(path);
    if (route === "/api/table") return table(q);
    if (route === "/api/compare") return compare(q);
    if (/^\/api\/runs\/[0-9a-f]{32}\/curves$/.test(route)) return curves(route, q);
    return undefined;
  };
})(window.T);

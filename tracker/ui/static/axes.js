/* tracker dashboard: the x axes a chart can use, and smoothing.
 *
 * Every curve, marker and batch is placed on the epoch axis first (an
 * epoch's value at x = epoch, its training over (epoch - 1, epoch]); an
 * axis maps that position to steps, time since the run started, or wall
 * clock time (UTC), piecewise linearly through the run's epochs, whose
 * start and end are known on each axis.
 */
"use strict";
(function (T) {
  const A = {};
  T.axes = A;
  A.MODES = [["epoch", "epoch"], ["step", "step"], ["elapsed", "time since start"], ["wall", "wall clock (UTC)"]];

  A.epoch = { mode: "epoch", label: "epoch", time: false, map: (x) => x, available: true };

  /* Piecewise-linear map through [pos, value] knots (sorted by pos); outside, extended with the nearest slope. */
  function interpolate(knots) {
    if (!knots.length) return (x) => x;
    return function (x) {
      if (x === null || x === undefined) return x;
      let i = 1;
      while (i < knots.length - 1 && knots[i][0] < x) i++;
      const [p0, v0] = knots[Math.max(0, i - 1)], [p1, v1] = knots[Math.min(i, knots.length - 1)];
      if (p1 === p0) return v0 + (x - p0);
      return v0 + (x - p0) * (v1 - v0) / (p1 - p0);
    };
  }

  /* The axis `mode` for one run. meta: the columns of /api/runs/ID/curves (epoch, step, started_at, ended_at). */
  A.forRun = function (meta, mode, runStart) {
    if (mode === "epoch" || !meta || !meta.epoch.length) return A.epoch;
    const n = meta.epoch.length, knots = [];
    if (mode === "step") {
      if (meta.step.some((s) => s === null)) return Object.assign({}, A.epoch, { available: false });
      for (let i = 0; i < n; i++) {
        const start = i > 0 ? meta.step[i - 1] : 0;
        knots.push([meta.epoch[i] - 1, start], [meta.epoch[i], meta.step[i]]);
      }
      return { mode, label: "step", time: false, map: interpolate(dedupe(knots)), available: true };
    }
    const t0 = mode === "elapsed" ? (T.date(runStart) || T.date(meta.started_at[0])) / 1000 : 0;
    for (let i = 0; i < n; i++) {
      const end = T.date(meta.ended_at[i]) / 1000 - t0;
      const start = meta.started_at[i] ? T.date(meta.started_at[i]) / 1000 - t0 : end;
      knots.push([meta.epoch[i] - 1, start], [meta.epoch[i], end]);
    }
    return { mode, label: mode === "wall" ? "wall clock (UTC)" : "time since start", time: mode === "wall",
      elapsed: mode === "elapsed", map: interpolate(dedupe(knots)), available: true };
  };

  function dedupe(knots) {
    const seen = new Set();
    return knots.filter(([p]) => (seen.has(p) ? false : (seen.add(p), true))).sort((a, b) => a[0] - b[0]);
  }

  /* Seconds as h:mm:ss (axis ticks of "time since start"). */
  A.clock = function (s) {
    if (s === null || s === undefined) return "";
    const sign = s < 0 ? "-" : "", a = Math.abs(s);
    const h = Math.floor(a / 3600), m = Math.floor((a % 3600) / 60), sec = a % 60;
    const ss = sec < 10 ? "0" + sec.toFixed(sec % 1 ? 1 : 0) : sec.toFixed(sec % 1 ? 1 : 0);
    return sign + (h ? h + ":" + String(m).padStart(2, "0") : m) + ":" + ss;
  };

  /* TensorBoard's smoothing: an exponential moving average, debiased at the start; gaps stay gaps. */
  A.ema = function (values, weight) {
    if (!weight) return values;
    let last = 0, n = 0;
    return values.map((v) => {
      if (v === null || v === undefined || !Number.isFinite(v)) return v;
      last = last * weight + (1 - weight) * v;
      n += 1;
      return last / (1 - Math.pow(weight, n));
    });
  };
})(window.T);

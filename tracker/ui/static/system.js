/* tracker dashboard: the run page's System panel (process CPU, memory, GPUs over the time since the run started).
 *
 * Like the curves, drawn lazily: /api/runs/ID/system is asked for only when
 * the panel comes near the window, and again on a live run's refresh once shown.
 */
"use strict";
(function (T) {
  const MIB = 1024 * 1024;
  const AXIS = { mode: "elapsed", label: "time since start", time: false, elapsed: true, map: (x) => x, available: true };
  const mib = (values) => values.map((v) => (v === null || v === undefined ? null : v / MIB));

  function charts(host, data, sync) {
    const x = data.elapsed, drawn = [];
    const gpus = Object.entries(data.gpus || {});
    /* One table per series, of the samples that have its value: a sample too close to the previous one has no CPU use. */
    const table = (label, values, i) => {
      const keep = values.map((v, j) => j).filter((j) => values[j] !== null && values[j] !== undefined);
      return { x: keep.map((j) => x[j]), series: [{ label, values: keep.map((j) => values[j]), color: T.color(i), width: 2, points: keep.length <= 60 }] };
    };
    const make = (key, title, yLabel, series) => drawn.push(T.charts.make(host, { key, title, yLabel, axis: AXIS, sync, height: 180,
      tables: series.map(([label, values, i]) => table(label, values, i)) }));
    make("system:cpu", "CPU use (%; 100 = one core busy)", "%", [["process CPU %", data.cpu_percent, 0],
      ...gpus.map(([d, g], i) => [`GPU ${d} utilization %`, g.utilization, i + 3])]);
    make("system:memory", "memory (MiB)", "MiB", [["process RSS", mib(data.rss), 1], ["machine memory used", mib(data.memory_used), 2]]);
    if (gpus.length) make("system:gpu-memory", "GPU memory used (MiB)", "MiB", gpus.map(([d, g], i) => [`GPU ${d}`, mib(g.memory_used), i + 3]));
    return drawn;
  }

  /* The panel in `host` for one run; drawn once it is near the window. Returns {refresh, destroy}. */
  T.systemPanel = function (host, runId) {
    let drawn = [], shown = false, disposed = false, asked = 0;
    const clear = () => { drawn.forEach((c) => c.destroy()); drawn = []; };
    async function draw() {
      const ticket = ++asked;
      let data;
      try { data = await T.api("/api/runs/" + runId + "/system"); } catch (err) { host.replaceChildren(T.errorBox(err.message)); return; }
      if (disposed || ticket !== asked) return;
      clear();
      host.dataset.samples = String(data.elapsed.length);
      if (!data.elapsed.length) {
        host.replaceChildren(T.el("p", { class: "muted", id: "system-note" },
          "No system metrics were recorded for this run (it was recorded with system_metrics=False, or by a tracker older than system metrics)."));
        return;
      }
      const total = data.memory_total.find((v) => v !== null);
      host.replaceChildren(T.el("p", { class: "muted", id: "system-note" }, `${T.plural(data.elapsed.length, "sample")}` +
        (total ? `; the machine has ${T.fmt(total / (1024 * MIB), 3)} GiB of memory` : "") +
        (Object.keys(data.gpus || {}).length ? "" : "; no GPU was seen (NVML)") + "."));
      drawn = charts(host, data, "system-" + runId);
    }
    const observer = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting) && !shown) { shown = true; observer.disconnect(); draw(); }
    }, { rootMargin: "300px" });
    host.replaceChildren(T.el("p", { class: "muted" }, "System metrics are drawn when this panel scrolls into view."));
    observer.observe(host);
    return {
      refresh() { if (shown) draw(); },
      destroy() { disposed = true; observer.disconnect(); clear(); },
    };
  };
})(window.T);

/* tracker dashboard: the tools of one chart: reset zoom, PNG and CSV download, expand.
 *
 * Downloads are built in the page (a canvas, a text blob) and saved through
 * an object URL: nothing is fetched, so they work in a report opened from
 * disk under its Content Security Policy.
 */
"use strict";
(function (T) {
  const K = {};
  T.chartTools = K;

  function save(blob, name) {
    const url = URL.createObjectURL(blob);
    const a = T.el("a", { href: url, download: name, hidden: true });
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  }

  const fileName = (title, ext) => (title.replace(/[^A-Za-z0-9._-]+/g, "_").replace(/^_+|_+$/g, "") || "chart") + "." + ext;

  /* The chart as drawn (axes and curves), with its title and a legend of its series. */
  K.png = function (chart) {
    const u = chart.u, ratio = window.devicePixelRatio || 1;
    const shown = u.series.slice(1).filter((s) => s.show !== false && !/\(raw\)$/.test(s.label));
    const legendRows = Math.ceil(shown.length / 3);
    const head = 28 * ratio, foot = (legendRows * 18 + 8) * ratio;
    const canvas = document.createElement("canvas");
    canvas.width = u.ctx.canvas.width;
    canvas.height = u.ctx.canvas.height + head + foot;
    const ctx = canvas.getContext("2d");
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.fillStyle = "#1d2330";
    ctx.font = `600 ${14 * ratio}px sans-serif`;
    ctx.fillText(chart.title, 8 * ratio, 19 * ratio);
    ctx.drawImage(u.ctx.canvas, 0, head);
    ctx.font = `${12 * ratio}px sans-serif`;
    const col = canvas.width / 3;
    shown.forEach((s, i) => {
      const x = (i % 3) * col + 8 * ratio, y = head + u.ctx.canvas.height + (Math.floor(i / 3) * 18 + 14) * ratio;
      ctx.fillStyle = typeof s._stroke === "string" ? s._stroke : (typeof s.stroke === "function" ? s.stroke(u, i + 1) : s.stroke) || "#000";
      ctx.fillRect(x, y - 8 * ratio, 14 * ratio, 4 * ratio);
      ctx.fillStyle = "#1d2330";
      ctx.fillText(String(s.label).slice(0, 60), x + 20 * ratio, y - 2 * ratio);
    });
    canvas.toBlob((blob) => save(blob, fileName(chart.title, "png")), "image/png");
  };

  /* The chart's data, unsmoothed: one row per x, one column per series (exact shortest digits). */
  K.csvText = function (chart) {
    const [x, ...columns] = chart.raw.data;
    const quote = (s) => (/[",\n\r]/.test(s) || /^[=+\-@\t\r]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s);
    const lines = [[chart.raw.xLabel, ...chart.raw.labels].map((s) => quote(String(s))).join(",")];
    for (let i = 0; i < x.length; i++) {
      lines.push([x[i], ...columns.map((c) => c[i])].map((v) => (v === null || v === undefined ? "" : String(v))).join(","));
    }
    return lines.join("\n") + "\n";
  };
  K.csv = (chart) => save(new Blob([K.csvText(chart)], { type: "text/csv" }), fileName(chart.title, "csv"));

  K.expand = function (chart) {
    const box = chart.box, on = !box.classList.contains("expanded");
    box.classList.toggle("expanded", on);
    document.body.classList.toggle("has-expanded", on);
    const width = on ? Math.floor(window.innerWidth * 0.9) - 24 : box.parentNode.clientWidth - 18;
    chart.u.setSize({ width: Math.max(280, width), height: on ? Math.floor(window.innerHeight * 0.7) : chart.height });
    box.querySelector(".tool-expand").textContent = on ? "close" : "expand";
    if (on) {
      const close = (ev) => { if (ev.key === "Escape" && box.classList.contains("expanded")) { K.expand(chart); } };
      document.addEventListener("keydown", close, { once: true });
    }
  };

  /* The toolbar of a chart. */
  K.bar = function (chart) {
    const button = (cls, text, title, fn) => T.el("button", { type: "button", class: "tool " + cls, title, onclick: () => fn(chart) }, text);
    return T.el("span", { class: "tools" },
      button("tool-reset", "reset zoom", "show every epoch again (or double-click the chart); drag across the chart to zoom", (c) => c.resetZoom()),
      button("tool-png", "PNG", "download this chart as a PNG image", K.png),
      button("tool-csv", "CSV", "download this chart's data as CSV (unsmoothed)", K.csv),
      button("tool-expand", "expand", "a larger view (Escape closes it)", K.expand));
  };
})(window.T);

/* tracker dashboard: parallel coordinates with brushing (as TensorBoard's HParams and W&B sweeps).
 *
 * One vertical axis per param and one for the value; one line per trial, in
 * the colour of its value (the best trial thick and outlined). Drag along an
 * axis to keep the trials in that range (a brush per axis; all brushes must
 * hold); click an axis to clear its brush. The figure says what it drew in
 * data-* attributes: data-axes (name, scale, x), data-brushes (per axis the
 * range or categories kept), data-selected and data-lines.
 */
"use strict";
(function (T) {
  const P = T.plot;
  const TOP = 40, BOTTOM = 26, SIDE = 70, GRAB = 14;

  /* spec: {axes: [Axis...] (the API's, the value axis last), labels: [...], trials: [{trial, values: [...], shade, best}],
   * onChange(keptSet)}. Returns {box, draw(highlight), clear(), kept()}. */
  T.parallel = function (host, spec) {
    const box = P.figure("parallel", "Parallel coordinates: drag along an axis to filter the trials, click it to clear");
    host.appendChild(box);
    const width = Math.max(560, host.clientWidth - 20), height = 330;
    const { canvas, ctx } = P.canvas(width, height, "parallel coordinates of the trials' params and value");
    canvas.className = "parallel";
    box.appendChild(canvas);
    const n = spec.axes.length;
    const xs = spec.axes.map((_, i) => (n === 1 ? width / 2 : SIDE + (width - 2 * SIDE) * i / (n - 1)));
    const y0 = height - BOTTOM, y1 = TOP;  // low values at the bottom
    const scales = spec.axes.map((a) => P.scale(a, y0, y1));
    const points = spec.trials.map((t) => t.values.map((v, i) => (v === null || v === undefined ? null : scales[i](v))));
    const brushes = new Map();  // axis index -> {a, b} in pixels (a < b)
    let dragging = null, highlight = null;

    function inside(i, v, py) {
      const b = brushes.get(i);
      if (!b) return true;
      return py !== null && py !== undefined && py >= b.a && py <= b.b && v !== null && v !== undefined;
    }
    function kept() {
      const out = new Set();
      spec.trials.forEach((t, k) => { if (t.values.every((v, i) => inside(i, v, points[k][i]))) out.add(t.trial); });
      return out;
    }
    function brushValues() {
      const out = {};
      for (const [i, b] of brushes) {
        const a = spec.axes[i];
        if (a.kind === "category") out[a.name] = a.categories.filter((c, j) => { const p = scales[i].at(j); return p >= b.a && p <= b.b; }).map((c) => JSON.parse(c));
        else out[a.name] = [scales[i].invert(b.b), scales[i].invert(b.a)];
      }
      return out;
    }

    function line(k) {
      ctx.beginPath();
      let open = false;
      for (let i = 0; i < n; i++) {
        const p = points[k][i];
        if (p === null) { open = false; continue; }
        if (open) ctx.lineTo(xs[i], p); else ctx.moveTo(xs[i], p);
        open = true;
      }
      ctx.stroke();
    }

    function draw(hl) {
      if (hl !== undefined) highlight = hl;
      const keep = kept();
      ctx.clearRect(0, 0, width, height);
      ctx.lineJoin = "round";
      ctx.lineWidth = 1;
      ctx.strokeStyle = "rgba(152,162,179,0.25)";
      spec.trials.forEach((t, k) => { if (!keep.has(t.trial)) line(k); });
      spec.trials.forEach((t, k) => {
        if (!keep.has(t.trial) || t.best) return;
        ctx.strokeStyle = t.shade === null ? "rgba(102,112,133,0.55)" : P.ramp(t.shade);
        ctx.setLineDash(t.shade === null ? [4, 3] : []);
        ctx.lineWidth = 1.2;
        line(k);
      });
      ctx.setLineDash([]);
      spec.trials.forEach((t, k) => {
        if (!t.best || !keep.has(t.trial)) return;
        ctx.lineWidth = 5; ctx.strokeStyle = "#101828"; line(k);
        ctx.lineWidth = 2.5; ctx.strokeStyle = "#f04438"; line(k);
      });
      const h = spec.trials.findIndex((t) => t.trial === highlight);
      if (h >= 0) { ctx.lineWidth = 3; ctx.strokeStyle = "#101828"; line(h); }
      for (let i = 0; i < n; i++) {
        const a = spec.axes[i], x = xs[i];
        ctx.strokeStyle = "#344054"; ctx.lineWidth = 1;
        ctx.beginPath(); ctx.moveTo(x, y1); ctx.lineTo(x, y0); ctx.stroke();
        ctx.font = "600 12px system-ui, sans-serif"; ctx.fillStyle = "#1d2330"; ctx.textAlign = "center"; ctx.textBaseline = "bottom";
        ctx.fillText(spec.labels[i].slice(0, 22), x, y1 - 18);
        ctx.font = "10px system-ui, sans-serif"; ctx.fillStyle = "#667085";
        ctx.fillText(a.kind === "category" ? "category" : a.log ? "log" : "linear", x, y1 - 6);
        ctx.textAlign = "right"; ctx.textBaseline = "middle";
        for (const v of P.ticks(a, 5)) {
          const p = scales[i](v);
          if (p === null || p < y1 - 1 || p > y0 + 1) continue;
          ctx.strokeStyle = "rgba(255,255,255,0.9)"; ctx.lineWidth = 3;
          ctx.strokeText(P.label(v).slice(0, 12), x - 5, p);
          ctx.fillText(P.label(v).slice(0, 12), x - 5, p);
          ctx.strokeStyle = "#344054"; ctx.lineWidth = 1;
          ctx.beginPath(); ctx.moveTo(x - 3, p); ctx.lineTo(x, p); ctx.stroke();
        }
        const b = brushes.get(i) || (dragging && dragging.i === i ? { a: Math.min(dragging.from, dragging.to), b: Math.max(dragging.from, dragging.to) } : null);
        if (b) {
          ctx.fillStyle = "rgba(31,119,180,0.18)"; ctx.strokeStyle = "#1f77b4";
          ctx.fillRect(x - 8, b.a, 16, b.b - b.a); ctx.strokeRect(x - 8, b.a, 16, b.b - b.a);
        }
      }
      box.dataset.brushes = JSON.stringify(brushValues());
      box.dataset.selected = String(keep.size);
      return keep;
    }

    function axisAt(x) {
      let best = -1, dist = GRAB;
      xs.forEach((ax, i) => { if (Math.abs(ax - x) <= dist) { best = i; dist = Math.abs(ax - x); } });
      return best;
    }
    function local(ev) {
      const r = canvas.getBoundingClientRect();
      return { x: ev.clientX - r.left, y: Math.max(y1, Math.min(y0, ev.clientY - r.top)) };
    }
    canvas.addEventListener("pointerdown", (ev) => {
      const p = local(ev), i = axisAt(p.x);
      if (i < 0) return;
      canvas.setPointerCapture(ev.pointerId);
      dragging = { i, from: p.y, to: p.y };
      ev.preventDefault();
    });
    canvas.addEventListener("pointermove", (ev) => {
      const p = local(ev);
      canvas.style.cursor = axisAt(p.x) >= 0 ? "ns-resize" : "default";
      if (!dragging) return;
      dragging.to = p.y;
      draw();
    });
    const finish = () => {
      if (!dragging) return;
      const { i, from, to } = dragging;
      dragging = null;
      if (Math.abs(to - from) < 3) brushes.delete(i);
      else brushes.set(i, { a: Math.min(from, to), b: Math.max(from, to) });
      spec.onChange(draw());
    };
    canvas.addEventListener("pointerup", finish);
    canvas.addEventListener("pointercancel", finish);

    box.dataset.axes = JSON.stringify(spec.axes.map((a, i) => ({ name: a.name, label: spec.labels[i], scale: a.kind === "category" ? "category" : a.log ? "log" : "linear", x: xs[i] })));
    box.dataset.top = String(y1);
    box.dataset.bottom = String(y0);
    box.dataset.lines = String(spec.trials.length);
    draw();
    return {
      box, draw,
      kept,
      clear() { brushes.clear(); spec.onChange(draw()); },
    };
  };
})(window.T);

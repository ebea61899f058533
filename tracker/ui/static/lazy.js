/* tracker dashboard: charts drawn as they scroll into view, and the controls every chart page shares.
 *
 * A page lays out one slot per chart (a placeholder of the chart's height);
 * a slot's chart is drawn when the slot comes near the window, and drawn
 * again when the controls change. A section shows its first charts and a
 * button for the next ones, so a run with 10,000 keys lays out a few
 * hundred slots, not 5,000.
 */
"use strict";
(function (T) {
  const SHOW = 60;

  /* The smoothing slider, x axis choice and (optionally) key search. state: {smooth, axis, search}. */
  T.chartControls = function (state, onChange, options) {
    const o = options || {};
    const slider = T.el("input", { type: "range", id: "smoothing", min: "0", max: "0.99", step: "0.01", value: String(state.smooth),
      "aria-label": "smoothing" });
    const shown = T.el("output", { id: "smoothing-value", for: "smoothing" }, state.smooth ? state.smooth.toFixed(2) : "off");
    const axis = T.el("select", { id: "x-axis", "aria-label": "x axis" },
      T.axes.MODES.map(([v, label]) => T.el("option", { value: v, selected: v === state.axis }, label)));
    let typing = null;
    slider.addEventListener("input", () => {
      shown.textContent = Number(slider.value) ? Number(slider.value).toFixed(2) : "off";
      clearTimeout(typing);
      typing = setTimeout(() => { state.smooth = Number(slider.value); onChange("smooth"); }, 120);
    });
    axis.addEventListener("change", () => { state.axis = axis.value; onChange("axis"); });
    const parts = [T.el("label", { title: "exponential moving average, as TensorBoard's; the raw curve stays faint behind" }, "smoothing ", slider, " ", shown),
      T.el("label", null, "x axis ", axis)];
    if (o.search) {
      const search = T.el("input", { type: "search", id: "key-search", placeholder: "search keys: loss, inner/*acc*", "aria-label": "search keys", value: state.search || "" });
      search.addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(() => { state.search = search.value; onChange("search"); }, 200); });
      parts.unshift(search);
    }
    return T.el("div", { class: "toolbar chart-controls" }, parts);
  };

  /* Lay out sections of chart slots in `host`; draw(group, slot) draws a chart into a slot (async). */
  T.lazyCharts = function (host, sections, draw, height) {
    const drawn = new Map();  // slot -> chart
    const observer = new IntersectionObserver((entries) => {
      for (const entry of entries) {
        if (!entry.isIntersecting || entry.target.dataset.state) continue;
        entry.target.dataset.state = "loading";
        Promise.resolve(draw(JSON.parse(entry.target.dataset.keys), entry.target)).then((chart) => {
          if (!chart) { entry.target.dataset.state = "empty"; return; }
          entry.target.style.minHeight = "";
          entry.target.dataset.state = "drawn";
          drawn.set(entry.target, chart);
        });
      }
    }, { rootMargin: "400px 0px" });
    function slots(grid, groups) {
      for (const g of groups) {
        const slot = T.el("div", { class: "slot", "data-metric": g[0], "data-keys": JSON.stringify(g) });
        slot.style.minHeight = (height + 60) + "px";
        grid.appendChild(slot);
        observer.observe(slot);
      }
    }
    const nodes = sections.map((s) => {
      const grid = T.el("div", { class: "charts" });
      slots(grid, s.groups.slice(0, SHOW));
      let next = SHOW;
      const more = T.el("button", { type: "button", class: "more", hidden: s.groups.length <= SHOW }, "");
      const label = () => { more.textContent = `show ${Math.min(SHOW, s.groups.length - next)} more charts (${s.groups.length - next} not shown)`; };
      label();
      more.addEventListener("click", () => { slots(grid, s.groups.slice(next, next + SHOW)); next += SHOW; more.hidden = next >= s.groups.length; label(); });
      const keys = s.groups.reduce((n, g) => n + g.length, 0);
      if (sections.length === 1 && !s.prefix) return T.el("div", { class: "key-section" }, grid, more);
      return T.el("details", { class: "key-section", open: true, "data-prefix": s.prefix },
        T.el("summary", null, (s.prefix || "top level") + " ", T.el("span", { class: "muted" }, `${T.plural(keys, "key")} on ${T.plural(s.groups.length, "chart")}`)), grid, more);
    });
    host.replaceChildren(...nodes);
    return {
      charts: () => [...drawn.values()],
      /* Draw the drawn charts again (new data or controls). */
      redraw() {
        for (const [slot, chart] of drawn) {
          const height = slot.offsetHeight;
          slot.style.minHeight = height + "px";
          chart.destroy();
          drawn.delete(slot);
          delete slot.dataset.state;
          observer.unobserve(slot);
          observer.observe(slot);
        }
      },
      destroy() { observer.disconnect(); for (const c of drawn.values()) c.destroy(); drawn.clear(); },
    };
  };
})(window.T);

/* tracker dashboard: the router. Real paths on the server (/, /runs/ID, /compare?run=..),
 * #/paths in a static report opened from disk. */
"use strict";
(function (T) {
  const main = document.getElementById("app");
  let dispose = null;

  function current() {
    if (T.mode === "report") {
      const hash = location.hash.replace(/^#/, "") || T.report.start || "/";
      const [path, search] = hash.split("?");
      return { path, params: new URLSearchParams(search || "") };
    }
    return { path: location.pathname, params: new URLSearchParams(location.search) };
  }

  function render() {
    if (dispose) dispose();
    dispose = null;
    delete main.dataset.live;
    const { path, params } = current();
    const run = path.match(/^\/runs\/([0-9a-f]{32})$/);
    const experiment = path.match(/^\/experiments\/(.+)$/);
    main.dataset.view = run ? "run" : path === "/compare" ? "compare" : experiment ? "experiment" : "runs";
    delete main.dataset.drawn;
    if (run) dispose = T.views.run(main, run[1]);
    else if (experiment) {
      let name = null;
      try { name = decodeURIComponent(experiment[1]); } catch (err) { name = null; }
      dispose = name ? T.views.experiment(main, name) : (main.replaceChildren(T.errorBox("No such page.")), null);
    }
    else if (path === "/compare") {
      const ids = params.getAll("run").filter((id) => /^[0-9a-f]{32}$/.test(id));
      dispose = ids.length ? T.views.compare(main, ids) : (main.replaceChildren(T.errorBox("Select runs to compare on the runs page.")), null);
    } else if (path === "/" || path === "") {
      document.title = "runs · tracker";
      dispose = T.views.runs(main);
    } else main.replaceChildren(T.errorBox("No such page."));
  }

  T.navigate = function (route) {
    if (T.mode === "report") location.hash = route;
    else {
      history.pushState(null, "", route);
      render();
    }
    window.scrollTo(0, 0);
  };

  document.addEventListener("click", (ev) => {
    const a = ev.target.closest && ev.target.closest("a[data-route]");
    if (!a || ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
    ev.preventDefault();
    T.navigate(a.dataset.route);
  });
  window.addEventListener(T.mode === "report" ? "hashchange" : "popstate", render);
  document.querySelectorAll("a[data-route]").forEach((a) => { a.href = T.href(a.dataset.route); });
  render();
})(window.T);

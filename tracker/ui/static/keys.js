/* tracker dashboard: a run's many logs keys, grouped for people.
 *
 * Each key is paired with its val_ twin on one chart (val_loss with loss,
 * val_inner/acc with inner/acc); charts are gathered in sections by the
 * key's first path segment (inner/..., encoder/...), top-level keys first.
 * A search box narrows the keys: words that must all appear, or a glob with
 * * and ? (case-insensitive).
 */
"use strict";
(function (T) {
  const LR = /^(lr|learning_rate)$/;

  /* Charts to draw: each train key with its val_ twin, then val-only keys. */
  T.keyGroups = function (keys) {
    const set = new Set(keys), groups = [];
    for (const k of keys) if (!k.startsWith("val_")) groups.push(set.has("val_" + k) ? [k, "val_" + k] : [k]);
    for (const k of keys) if (k.startsWith("val_") && !set.has(k.slice(4))) groups.push([k]);
    return groups;
  };

  /* The section a chart belongs to: its first key's prefix up to the first "/", without val_. */
  const prefix = (group) => {
    const k = group[0].startsWith("val_") ? group[0].slice(4) : group[0];
    const cut = k.indexOf("/");
    return cut > 0 ? k.slice(0, cut + 1) : "";
  };

  T.keyMatcher = function (text) {
    const q = (text || "").trim().toLowerCase();
    if (!q) return () => true;
    if (/[*?]/.test(q)) {
      const re = new RegExp("^" + q.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".") + "$");
      return (k) => re.test(k.toLowerCase());
    }
    const words = q.split(/\s+/);
    return (k) => words.every((w) => k.toLowerCase().includes(w));
  };

  /* Sections [{prefix, groups}] of the keys that match `search`, top-level first, then by prefix. */
  T.keySections = function (keys, search) {
    const match = T.keyMatcher(search);
    const wanted = keys.filter((k) => !LR.test(k)).sort();
    const groups = T.keyGroups(wanted).filter((g) => g.some(match));
    const byPrefix = new Map();
    for (const g of groups) {
      const p = prefix(g);
      if (!byPrefix.has(p)) byPrefix.set(p, []);
      byPrefix.get(p).push(g);
    }
    return [...byPrefix.entries()].sort((a, b) => (a[0] === "" ? -1 : b[0] === "" ? 1 : a[0].localeCompare(b[0])))
      .map(([p, gs]) => ({ prefix: p, groups: gs }));
  };
})(window.T);

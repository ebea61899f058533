/* tracker dashboard: a run's epoch curves, fetched key by key as charts need them.
 *
 * /api/runs/ID/curves answers with the run's epochs as columns (epoch,
 * step, times) and the values of the keys asked for. A run with few keys is
 * read in one request; otherwise the keys of the charts coming into view
 * are gathered for a moment and read together. Answers are kept until the
 * run changes (clear).
 */
"use strict";
(function (T) {
  const ALL_AT_ONCE = 150, BATCH = 300;

  T.curveLoader = function (runId, keys) {
    const path = "/api/runs/" + runId + "/curves";
    let cache = new Map(), meta = null, pending = new Map(), timer = null, whole = null;
    const wholeRun = keys.length <= ALL_AT_ONCE || T.mode === "report";

    async function flush() {
      timer = null;
      const asked = [...pending.entries()];
      pending = new Map();
      for (let i = 0; i < asked.length; i += BATCH) {
        const part = asked.slice(i, i + BATCH);
        try {
          const answer = await T.api(path + T.query(part.map(([k]) => ["key", k])));
          meta = answer;
          for (const [k, waiters] of part) {
            cache.set(k, answer.values[k] || answer.epoch.map(() => null));
            waiters.forEach((w) => w.resolve());
          }
        } catch (err) {
          part.forEach(([, waiters]) => waiters.forEach((w) => w.reject(err)));
        }
      }
    }

    function one(k) {
      if (cache.has(k)) return Promise.resolve();
      return new Promise((resolve, reject) => {
        if (!pending.has(k)) pending.set(k, []);
        pending.get(k).push({ resolve, reject });
        if (!timer) timer = setTimeout(flush, 30);
      });
    }

    return {
      /* {meta, values: {key: [...]}} for `wanted` keys. */
      async get(wanted) {
        if (wholeRun) {
          if (!whole) whole = T.api(path);
          const answer = await whole;
          meta = answer;
          const values = {};
          for (const k of wanted) values[k] = answer.values[k] || answer.epoch.map(() => null);
          return { meta: answer, values };
        }
        await Promise.all(wanted.map(one));
        const values = {};
        for (const k of wanted) values[k] = cache.get(k);
        return { meta, values };
      },
      /* The epochs alone (one key's worth), to see whether the run changed. */
      async probe() {
        const answer = await T.api(path + T.query(keys.length ? [["key", keys[0]]] : []));
        return answer;
      },
      clear() { cache = new Map(); whole = null; },
    };
  };

  /* One chart's table of epoch values: x is the epoch, null where an epoch did not log a finite number. */
  T.curveTable = function (meta, values, keys, style) {
    return { x: meta.epoch.slice(), series: keys.map((k) => Object.assign({ label: k, values: values[k].map(T.plotNum) }, style(k))) };
  };
})(window.T);

/* tracker dashboard: editing a run (tracker ui --edit): rename, tags, note, move to the trash and undo.
 *
 * Only a server started with --edit puts its token in the page
 * (<meta name="tracker-edit-token">); every change is a same-origin JSON
 * POST carrying it in X-Tracker-Token. Without the token the page shows no
 * edit controls, and the server refuses edits anyway. Everything is built
 * with T.el (text nodes), like the rest of the dashboard.
 */
"use strict";
(function (T) {
  const meta = document.querySelector('meta[name="tracker-edit-token"]');
  T.editToken = meta ? meta.getAttribute("content") : null;
  T.editable = T.mode === "server" && !!T.editToken;

  /* POST a JSON body to an edit endpoint; the answer's JSON, or an Error with the server's sentence. */
  T.post = async function (path, body) {
    const response = await fetch(path, {
      method: "POST", cache: "no-store", credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-Tracker-Token": T.editToken },
      body: JSON.stringify(body || {}),
    });
    const answer = await response.json().catch(() => ({ error: response.statusText }));
    if (!response.ok) throw new Error(answer.error || ("HTTP " + response.status));
    return answer;
  };

  /* The edit panel of a run page. changed(message): redraw the page after an edit, keeping the message;
   * shown: the message to show at first ({text, failed}), or null. */
  T.editPanel = function (detail, changed, shown) {
    const id = detail.run.id;
    const base = "/api/runs/" + id;
    const message = T.el("p", { class: "edit-message", id: "edit-message", role: "status" });
    const panel = T.el("section", { class: "edit-panel", id: "edit-panel" });

    function say(text, failed) {
      message.className = "edit-message" + (failed ? " error" : " done");
      message.textContent = text;
    }
    async function act(path, body, done) {
      say("", false);
      try {
        const answer = await T.post(base + path, body);
        const text = done(answer);
        say(text, false);
        if (path !== "/delete") changed({ text, failed: false });
      } catch (err) {
        say(err.message, true);
      }
    }
    if (shown) say(shown.text, shown.failed);

    const name = T.el("input", { id: "edit-name", type: "text", "aria-label": "run name", value: detail.run.name || "" });
    const rename = T.el("button", { id: "edit-rename", type: "button",
      onclick: () => act("/name", { name: name.value }, (a) => "Renamed to " + a.run.name + ".") }, "Rename");

    const tags = T.el("ul", { class: "edit-tags", id: "edit-tags" }, Object.entries(detail.tags).map(([k, v]) =>
      T.el("li", { "data-tag": k }, T.el("code", null, k + "=" + v), " ",
        T.el("button", { type: "button", class: "link remove-tag", "aria-label": "remove tag " + k,
          onclick: () => act("/tags", { remove: [k] }, () => "Removed the tag " + k + ".") }, "remove"))));
    const key = T.el("input", { id: "edit-tag-key", type: "text", placeholder: "key", "aria-label": "tag key" });
    const value = T.el("input", { id: "edit-tag-value", type: "text", placeholder: "value", "aria-label": "tag value" });
    const addTag = T.el("button", { id: "edit-add-tag", type: "button", onclick: () => {
      const set = {};
      Object.defineProperty(set, key.value, { value: value.value, enumerable: true });  // any key, even __proto__
      act("/tags", { set }, () => "Set the tag " + key.value + ".");
    } }, "Set tag");

    const note = T.el("textarea", { id: "edit-note", rows: "3", "aria-label": "note" });
    note.value = detail.run.note || "";
    const saveNote = T.el("button", { id: "edit-save-note", type: "button",
      onclick: () => act("/note", { text: note.value }, (a) => (a.note === null ? "Cleared the note." : "Saved the note.")) }, "Save note");

    const undo = T.el("button", { id: "edit-undo", type: "button", hidden: true,
      onclick: () => act("/undelete", {}, () => "Brought the run back from the trash.") }, "Undo");
    const remove = T.el("button", { id: "edit-delete", class: "danger", type: "button",
      onclick: () => act("/delete", {}, () => {
        undo.hidden = false;
        remove.disabled = true;
        return "Moved to the trash: it is gone from every list. 'tracker gc' removes it for good.";
      }) }, "Move to trash");

    panel.append(
      T.el("h2", null, "Edit"),
      T.el("div", { class: "edit-row" }, T.el("label", { for: "edit-name" }, "name"), name, rename),
      T.el("div", { class: "edit-row" }, T.el("span", { class: "edit-label" }, "tags"), tags),
      T.el("div", { class: "edit-row" }, T.el("span", { class: "edit-label" }), key, value, addTag),
      T.el("div", { class: "edit-row" }, T.el("label", { for: "edit-note" }, "note"), note, saveNote),
      T.el("div", { class: "edit-row" }, T.el("span", { class: "edit-label" }), remove, undo),
      message);
    return panel;
  };
})(window.T);

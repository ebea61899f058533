"""``tracker ui --edit``: the page renames, tags, notes and deletes runs; nothing else may.

Real uvicorn servers over a database of real fits; real HTTP requests for
each rule of the gate (read-only by default, the server's token, the page's
own origin, JSON), then Debian's headless Chromium: the edit panel changes
the database, and a page served on another port that tries every way a page
can send a POST (a form, a ``no-cors`` fetch, a CORS fetch carrying a leaked
token) changes nothing.
"""

import http.server
import json
import re
import threading
import urllib.error
import urllib.request
from functools import partial

import pytest
from conftest import guide_data, guide_model
from playwright.sync_api import expect
from ui_support import open_page

from tracker import Store, TrackingCallback
from tracker.ui.app import create_app
from tracker.ui.server import running_server

TIMEOUT_MS = 15_000


def fit(db, name, tags=None):
    x, y = guide_data(n=48)
    cb = TrackingCallback(db, run_name=name, tags=tags)
    guide_model().fit(x, y, batch_size=16, epochs=3, validation_split=0.25, callbacks=[cb], verbose=0)
    cb.close()
    return cb.run_id


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    db = str(tmp_path_factory.mktemp("edit") / "runs.db")
    return db, fit(db, "sequential", tags={"exp": "ui"}), fit(db, "other")


def request(url, method="POST", body=None, headers=None):
    """``(status, headers, parsed JSON or text)``, 4xx included."""
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            status, head, raw = response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        status, head, raw = exc.code, exc.headers, exc.read()
    kind = head.get("content-type", "")
    return status, head, json.loads(raw) if kind.startswith("application/json") else raw.decode()


def token_of(url):
    page = request(url + "/", "GET")[2]
    found = re.search(r'<meta name="tracker-edit-token" content="([A-Za-z0-9_-]+)">', page)
    return found and found.group(1)


def test_the_dashboard_is_read_only_by_default(recorded):
    db, run_id, _ = recorded
    with running_server(create_app(db)) as url:
        assert token_of(url) is None
        status, _, body = request(f"{url}/api/runs/{run_id}/name", body={"name": "x"},
                                  headers={"Content-Type": "application/json", "Origin": url, "X-Tracker-Token": "x"})
    assert status == 403 and body["error"] == ("This dashboard is read-only; start it with 'tracker ui --edit' "
                                               "to change runs.")
    assert Store(db).run(run_id)["run"]["name"] == "sequential"


def test_an_edit_needs_the_servers_token_its_own_origin_and_json(recorded):
    db, run_id, _ = recorded
    with running_server(create_app(db, edit=True)) as url, running_server(create_app(db, edit=True)) as other:
        token = token_of(url)
        assert token and len(token) >= 40 and token_of(other) not in (None, token)  # one per server
        good = {"Content-Type": "application/json", "Origin": url, "X-Tracker-Token": token}
        endpoint = f"{url}/api/runs/{run_id}/name"
        refusals = {
            "no origin": {k: v for k, v in good.items() if k != "Origin"},
            "another site": {**good, "Origin": "http://evil.example"},
            "another port": {**good, "Origin": other},
            "null origin": {**good, "Origin": "null"},
            "https twin": {**good, "Origin": url.replace("http:", "https:")},
            "no token": {k: v for k, v in good.items() if k != "X-Tracker-Token"},
            "another server's token": {**good, "X-Tracker-Token": token_of(other)},
            "a form": {**good, "Content-Type": "application/x-www-form-urlencoded"},
            "plain text": {**good, "Content-Type": "text/plain"},
        }
        for why, headers in refusals.items():
            status, _, body = request(endpoint, body={"name": "pwned"}, headers=headers)
            assert status == 403 and body["error"].startswith(("Refused:", "This dashboard")), why
        status, head, _ = request(endpoint, "OPTIONS", headers={
            "Origin": "http://evil.example", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-tracker-token"})
        assert status >= 400 and "access-control-allow-origin" not in {k.lower() for k in head.keys()}
        assert request(endpoint, body={"name": "x"}, headers={**good, "Host": "evil.example"})[0] == 400  # HostGuard
        assert Store(db).run(run_id)["run"]["name"] == "sequential"

        status, _, body = request(endpoint, body={"name": "renamed"}, headers=good)
        assert status == 200 and body["run"] == {"id": run_id, "name": "renamed", "status": "finished",
                                                 "deleted_at": None}
        assert request(endpoint, body={"name": ""}, headers=good)[2]["error"].startswith("A run's name cannot be empty")
        assert request(endpoint, body=b"[1]", headers=good)[0] == 400
        assert request(f"{url}/api/runs/{'0' * 32}/name", body={"name": "x"}, headers=good)[0] == 404
        status, _, body = request(endpoint, body={"name": "sequential"}, headers=good)
        assert status == 200 and Store(db).run(run_id)["run"]["name"] == "sequential"


@pytest.fixture
def page(browser):
    with open_page(browser, height=1000, timeout_ms=TIMEOUT_MS) as page:
        yield page


def test_the_run_page_renames_tags_notes_and_deletes_in_chromium(page, recorded, tmp_path):
    db, run_id, other = recorded
    with running_server(create_app(db)) as url:  # read-only: the note shows, no edit controls
        page.goto(f"{url}/runs/{run_id}")
        expect(page.locator("#run-name")).to_have_text("sequential")
        expect(page.locator("#edit-panel")).to_have_count(0)
    with running_server(create_app(db, edit=True)) as url:
        page.goto(f"{url}/runs/{run_id}")
        panel = page.locator("#edit-panel")
        expect(panel).to_have_attribute("data-drawn", "1")

        def edit(button):
            """Click an edit button and wait for the panel to be redrawn with the result."""
            drawn = int(panel.get_attribute("data-drawn"))
            page.click(button)
            expect(panel).to_have_attribute("data-drawn", str(drawn + 1))

        page.fill("#edit-name", "<b>baseline</b>")
        edit("#edit-rename")
        expect(page.locator("#run-name")).to_have_text("<b>baseline</b>")  # text, never markup
        page.fill("#edit-tag-key", "dataset")
        page.fill("#edit-tag-value", "digits")
        edit("#edit-add-tag")
        expect(page.locator('#edit-tags li[data-tag="dataset"]')).to_have_count(1)
        edit('#edit-tags li[data-tag="exp"] .remove-tag')
        expect(page.locator('#edit-tags li[data-tag="exp"]')).to_have_count(0)
        page.fill("#edit-note", "lr 0.1 diverges\nafter epoch 8")
        edit("#edit-save-note")
        expect(page.locator("#run-note")).to_have_text("lr 0.1 diverges\nafter epoch 8")
        summary = Store(db).run(run_id)
        assert summary["run"]["name"] == "<b>baseline</b>" and summary["tags"] == {"dataset": "digits"}
        assert summary["run"]["note"] == "lr 0.1 diverges\nafter epoch 8"
        page.screenshot(path=str(tmp_path / "ui-edit.png"), full_page=False)

        page.click("#edit-delete")
        expect(page.locator("#edit-message")).to_contain_text("Moved to the trash")
        assert list(Store(db).runs()["run_id"]) == [other]
        edit("#edit-undo")
        expect(page.locator("#edit-message")).to_contain_text("Brought the run back")
        assert sorted(Store(db).runs()["run_id"]) == sorted([run_id, other])
        page.fill("#edit-name", "")
        page.click("#edit-rename")
        expect(page.locator("#edit-message")).to_have_text("A run's name cannot be empty; give the new name.")
        page.goto(url + "/")
        expect(page.locator("#runs tbody tr")).to_have_count(2)
    assert page.errors == []
    Store(db)  # the database is readable afterwards
    from tracker import RunManager

    RunManager(db).rename(run_id, "sequential")
    RunManager(db).tag(run_id, {"exp": "ui"}, remove=["dataset"])
    RunManager(db).note(run_id, "")


ATTACK = """<!doctype html><meta charset="utf-8"><title>attacker</title>
<iframe name="sink"></iframe>
<form id="f" method="POST" target="sink" enctype="text/plain" action="TARGET/name">
<input name='{"name":"pwned-by-form","x":"' value='"}'></form>
<script src="attack.js"></script>"""

ATTACK_JS = """
(async function () {
  const target = TARGET, token = TOKEN, done = [];
  document.getElementById("f").submit();
  try { await fetch(target + "/delete", { method: "POST", mode: "no-cors", headers: { "Content-Type": "text/plain" },
        body: JSON.stringify({ token }) }); done.push("no-cors sent"); } catch (e) { done.push("no-cors failed"); }
  try { const r = await fetch(target + "/name", { method: "POST", headers: { "Content-Type": "application/json",
        "X-Tracker-Token": token }, body: JSON.stringify({ name: "pwned-by-cors" }) }); done.push("cors " + r.status); }
  catch (e) { done.push("cors blocked"); }
  document.title = "done: " + done.join(", ");
})();
"""


def test_a_page_on_another_port_cannot_change_a_run(page, recorded, tmp_path):
    db, run_id, _ = recorded
    before = Store(db).run(run_id)
    with running_server(create_app(db, edit=True)) as url:
        target = f"{url}/api/runs/{run_id}"
        token = token_of(url)  # even a leaked token does not help another origin
        site = tmp_path / "site"
        site.mkdir()
        (site / "index.html").write_text(ATTACK.replace("TARGET", target))
        (site / "attack.js").write_text(ATTACK_JS.replace("TARGET", json.dumps(target)).replace("TOKEN", json.dumps(token)))
        handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
        attacker = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=attacker.serve_forever, daemon=True).start()
        answers = []
        page.on("response", lambda r: answers.append((r.request.method, r.url, r.status)) if r.url.startswith(url) else None)
        posted = lambda path: lambda r: r.request.method == "POST" and r.url == f"{target}/{path}"  # noqa: E731
        try:
            with page.expect_response(posted("name")) as form, page.expect_response(posted("delete")) as no_cors:
                page.goto(f"http://127.0.0.1:{attacker.server_address[1]}/index.html")
                expect(page).to_have_title(re.compile("^done: "))
            assert form.value.status == 403 and no_cors.value.status == 403
        finally:
            attacker.shutdown()
            attacker.server_close()
        title = page.title()
    assert "no-cors sent" in title and "cors blocked" in title, title
    posts = sorted((u.rsplit("/", 1)[1], s) for m, u, s in answers if m == "POST")
    assert posts == [("delete", 403), ("name", 403)], answers  # the form and no-cors POSTs: refused; CORS: never sent
    after = Store(db).run(run_id)
    assert after["run"]["name"] == before["run"]["name"] == "sequential"
    assert after["run"]["deleted_at"] is None and after["tags"] == before["tags"]

"""`autodata review` through its HTTP interface (FastAPI TestClient): what the pages show, what the
store holds after each decision, and the security rules (escaping, CSRF, token, host, files)."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from autodata.review.app import ReviewSettings, create_app
from autodata.store.reviews import ReviewLog
from autodata.store.run_store import RunStore

ROOT = Path(__file__).resolve().parents[1]
XSS_QUESTION = 'What breaks? <script>window.__pwned = "script"</script>'
XSS_ANSWER = 'Nothing <img src="x" onerror="window.__pwned = \'img\'"> breaks.'


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def client_for(run_dir: Path, **settings) -> tuple[TestClient, RunStore]:
    store = RunStore.open_existing(run_dir)
    app = create_app(store, ReviewSettings(reviewer=settings.pop("reviewer", "tester"), **settings))
    return TestClient(app, base_url="http://127.0.0.1:8765", follow_redirects=False), store


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([0-9a-f]{64})"', html)
    assert m, "no CSRF field on the page"
    return m.group(1)


def count(html: str, name: str) -> int:
    m = re.search(rf'data-count="{name}">(\d+)<', html)
    assert m, name
    return int(m.group(1))


def first_accepted(run_dir: Path) -> tuple[dict, dict]:
    ex = lines(run_dir / "examples.jsonl")[0]
    ep = next(e for e in lines(run_dir / "episodes.jsonl") if e["document_id"] == ex["document_id"])
    return ex, ep


def item_url(ex: dict, ep: dict) -> str:
    rnd = next(r for r in ep["rounds"] if r["decision"] and r["decision"]["accepted"])
    return f"/item/{ex['document_id']}/{rnd['round']}"


@pytest.fixture
def review(run_copy):
    client, store = client_for(run_copy)
    with client:
        yield client, store, run_copy
    store.close()


def test_list_counts_and_filters_match_the_run(sim_run):
    client, store = client_for(sim_run)
    examples = lines(sim_run / "examples.jsonl")
    episodes = lines(sim_run / "episodes.jsonl")
    proposed = [r for e in episodes for r in e["rounds"] if r["example"]]
    html = client.get("/").text
    assert count(html, "documents") == len(episodes) == 8
    assert count(html, "accepted") == len(examples) >= 3
    assert count(html, "rejected_rounds") == len(proposed) - len(examples)
    assert count(html, "unreviewed") == len(examples) and count(html, "approved") == 0
    assert html.count("data-href=") == len(examples)  # default: accepted examples

    rejected = client.get("/", params={"kind": "rejected"}).text
    assert rejected.count("data-href=") == len(proposed) - len(examples)
    assert "round rejected" in rejected

    def weak_mean(r):
        scores = [a["score"] for a in r["weak"] if a["score"] is not None]
        return sum(scores) / len(scores) if scores else None

    low = [r for r in proposed if (w := weak_mean(r)) is not None and w <= 0.5]
    page = client.get("/", params={"kind": "all", "weak_max": "0.5"}).text
    assert page.count("data-href=") == len(low)

    word = examples[1]["question"].split()[3].strip("?,.")
    found = client.get("/", params={"q": word.upper()}).text
    hits = [
        e
        for e in examples
        if word.lower() in " ".join([e["document_title"], e["context"], e["question"], e["reference_answer"]]).lower()
    ]
    assert found.count("data-href=") == len(hits) >= 1

    by_gap = client.get("/", params={"sort": "gap"}).text
    gaps = [float(g) for g in re.findall(r"<td>(\d\.\d\d)</td>\s*<td>\d+</td>\s*<td>\s*<span", by_gap)]
    assert gaps == sorted(gaps, reverse=True) and len(gaps) == len(examples)
    assert client.get("/", params={"kind": "bogus"}).status_code == 422
    store.close()


def test_example_page_shows_everything_a_reviewer_needs(sim_run):
    client, store = client_for(sim_run)
    ex, ep = first_accepted(sim_run)
    page = client.get(item_url(ex, ep))
    assert page.status_code == 200
    html = page.text
    from markupsafe import escape

    for text in (ex["context"], ex["question"], ex["reference_answer"]):
        assert str(escape(text)) in html
    for c in ex["rubric"]:
        assert str(escape(c["criterion"])) in html
    attempts = ex["weak"]["attempts"] + ex["strong"]["attempts"]
    assert len(attempts) == 6
    for a in attempts:
        assert f"score {a['score']:.2f}" in html
        for quote in filter(None, a["evidence"]):
            assert f"<mark>{escape(quote)}</mark>" in html  # the judge's evidence, highlighted
    assert len(re.findall(r'class="met[ "]', html)) == sum(sum(a["marks"]) for a in attempts)
    assert f'id="gap">{ex["gap"]:.2f}<' in html
    # the excerpt is a stretch of the stored document text that the example is grounded in
    excerpt = re.search(r'id="excerpt">(.*?)</blockquote>', html, re.S).group(1).strip("… ")
    from html import unescape

    assert unescape(excerpt) in store.document_text(ex["document_id"])
    # round history: every round, with the reasons of the rejected ones
    for r in ep["rounds"]:
        for reason in (r["decision"] or {}).get("reasons", []):
            assert str(escape(reason["message"])) in html
    calls = sum(u["calls"] for u in store.usage_by_document(ex["document_id"])[ex["document_id"]].values())
    assert f'id="cost-calls">{calls}<' in html and calls > 0
    assert client.get("/item/doc-nope/0").status_code == 404
    store.close()


def test_decisions_are_saved_at_once_and_survive_a_restart(review):
    client, store, run_dir = review
    examples = lines(run_dir / "examples.jsonl")
    episodes = {e["document_id"]: e for e in lines(run_dir / "episodes.jsonl")}
    urls = [item_url(e, episodes[e["document_id"]]) for e in examples[:3]]
    token = csrf_of(client.get(urls[0]).text)

    res = client.post(urls[0] + "/approve", data={"csrf": token, "back": "sort=gap"})
    assert res.status_code == 303 and res.headers["location"] == urls[0] + "?sort=gap"
    log = ReviewLog(sqlite3.connect(run_dir / "run.db"))  # what another process sees, at once
    state = log.state(examples[0]["id"])
    assert state.status == "approved" and state.decided_by == "tester" and state.decided_at > 0

    assert client.post(urls[1] + "/reject", data={"csrf": token, "reason": "  "}).status_code == 400
    assert log.state(examples[1]["id"]).status == "unreviewed"
    client.post(urls[1] + "/reject", data={"csrf": token, "reason": "rubric rewards keywords"})
    assert (log.state(examples[1]["id"]).status, log.state(examples[1]["id"]).reason) == (
        "rejected",
        "rubric rewards keywords",
    )

    ex = examples[2]
    form = {
        "csrf": token,
        "question": "Edited: " + ex["question"],
        "reference_answer": ex["reference_answer"],
        "criterion": [c["criterion"] for c in ex["rubric"]][:-1] + ["", "a new criterion"],
        "weight": [str(c["weight"]) for c in ex["rubric"]][:-1] + ["", "2"],
        "category": [c["category"] for c in ex["rubric"]][:-1] + ["", "added"],
    }
    assert client.post(urls[2] + "/edit", data=form).status_code == 303
    edits = log.state(ex["id"]).edits
    assert set(edits) == {"question", "rubric"}  # the untouched reference answer is not an edit
    assert edits["question"] == "Edited: " + ex["question"]
    assert edits["rubric"][-1] == {"criterion": "a new criterion", "weight": 2, "category": "added"}
    assert len(edits["rubric"]) == len(ex["rubric"])
    stored = next(e for e in store.examples() if e.id == ex["id"])
    assert stored.question == ex["question"]  # the original is kept
    bad = dict(form, weight=["x"] + form["weight"][1:])
    res = client.post(urls[2] + "/edit", data=bad)
    assert res.status_code == 400 and "whole number" in res.text
    client.post(urls[2] + "/note", data={"csrf": token, "note": "check the units"})

    # a new server on the same directory (a restart) shows the same decisions
    client2, store2 = client_for(run_dir, reviewer="someone else")
    html = client2.get("/").text
    assert (count(html, "approved"), count(html, "rejected"), count(html, "edited")) == (1, 1, 1)
    page = client2.get(urls[2]).text
    assert "Edited: " in page and "original question" in page and "check the units" in page
    assert client2.get("/", params={"status": "rejected"}).text.count("data-href=") == 1
    store2.close()


def test_rejected_rounds_cannot_be_decided(review):
    client, _, run_dir = review
    ep = next(
        e
        for e in lines(run_dir / "episodes.jsonl")
        if any(r["example"] and not r["decision"]["accepted"] for r in e["rounds"])
    )
    rnd = next(r for r in ep["rounds"] if r["example"] and not r["decision"]["accepted"])
    url = f"/item/{ep['document_id']}/{rnd['round']}"
    html = client.get(url).text
    assert 'data-action="approve"' not in html
    assert client.post(url + "/approve", data={"csrf": csrf_of(html)}).status_code == 400


def test_decisions_need_the_csrf_token_and_the_same_origin(review):
    client, _, run_dir = review
    ex, ep = first_accepted(run_dir)
    url = item_url(ex, ep)
    token = csrf_of(client.get(url).text)
    assert client.post(url + "/approve", data={}).status_code == 403
    assert client.post(url + "/approve", data={"csrf": "0" * 64}).status_code == 403
    evil = {"Origin": "http://evil.example"}
    assert client.post(url + "/approve", data={"csrf": token}, headers=evil).status_code == 403
    assert (
        client.post(url + "/approve", data={"csrf": token}, headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    )
    assert client.post("/reviewer", data={"name": "mallory"}).status_code == 403
    assert ReviewLog(sqlite3.connect(run_dir / "run.db")).events() == []
    ok = {"Origin": "http://127.0.0.1:8765", "Sec-Fetch-Site": "same-origin"}
    assert client.post(url + "/approve", data={"csrf": token}, headers=ok).status_code == 303


def test_token_and_host_rules(run_copy):
    secret = "s3cret-token-for-tests"
    client, store = client_for(run_copy, token=secret)
    assert client.get("/").status_code == 401
    assert client.get("/", params={"token": "wrong-token-wrong-token"}).status_code == 401
    res = client.get("/", params={"token": secret, "kind": "all"})
    assert res.status_code == 303 and res.headers["location"] == "/?kind=all"  # the token leaves the URL
    assert "httponly" in res.headers["set-cookie"].lower() and "samesite=strict" in res.headers["set-cookie"].lower()
    assert client.get("/").status_code == 200  # the cookie carries it
    client.cookies.clear()
    assert client.get("/", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    assert client.get("/").status_code == 401
    store.close()

    client, store = client_for(run_copy)
    assert client.get("/", headers={"Host": "rebound.example:8765"}).status_code == 400
    assert client.get("/", headers={"Host": "localhost:8765"}).status_code == 200
    store.close()


def test_no_file_outside_the_store_can_be_read(sim_run):
    client, store = client_for(sim_run)
    for path in (
        "/static/../../../../etc/passwd",
        "/static/..%2f..%2f..%2f..%2fetc%2fpasswd",
        "/static/%2e%2e/run.db",
        "/static/review.js/../../run.db",
        "/item/..%2f..%2fetc%2fpasswd/0",
        "/run.db",
        "/examples.jsonl",
    ):
        res = client.get(path)
        assert res.status_code in (400, 404, 422), path
        assert "root:" not in res.text and "SQLite format" not in res.text
    assert client.get("/static/review.js").status_code == 200
    assert client.get("/static/app.py").status_code == 404
    store.close()


def plant_xss(run_dir: Path) -> tuple[str, str]:
    """Put markup payloads into the first accepted example, as if a model had written them."""
    db = sqlite3.connect(run_dir / "run.db")
    ex_id, doc_id, data = db.execute("SELECT id, document_id, data FROM examples ORDER BY seq LIMIT 1").fetchone()
    ex = json.loads(data)
    ex["question"] = XSS_QUESTION
    ex["strong"]["attempts"][0]["answer"] = XSS_ANSWER
    (episode,) = db.execute("SELECT episode FROM documents WHERE id = ?", (doc_id,)).fetchone()
    episode = json.loads(episode)
    rnd = next(r for r in episode["rounds"] if r["decision"] and r["decision"]["accepted"])
    rnd["example"]["question"] = XSS_QUESTION
    rnd["example"]["context"] = "<b>bold?</b> " + rnd["example"]["context"]
    rnd["strong"][0]["answer"] = XSS_ANSWER
    rnd["strong"][0]["evidence"] = ["<img src=x onerror=alert(1)>"] + (rnd["strong"][0]["evidence"] or [])[1:]
    db.execute("UPDATE examples SET data = ? WHERE id = ?", (json.dumps(ex), ex_id))
    db.execute(
        "UPDATE documents SET episode = ?, title = ? WHERE id = ?",
        (json.dumps(episode), "<script>alert('title')</script>", doc_id),
    )
    db.commit()
    db.close()
    return f"/item/{doc_id}/{rnd['round']}", ex_id


def test_model_and_document_strings_are_escaped(run_copy):
    url, _ = plant_xss(run_copy)
    client, store = client_for(run_copy)
    for page in (client.get(url), client.get("/", params={"kind": "all"})):
        html = page.text
        assert "<script>window" not in html and "<script>alert" not in html
        assert "<img src" not in html and "<b>bold" not in html
        assert "default-src 'none'; script-src 'self'" in page.headers["content-security-policy"]
    html = client.get(url).text
    assert "&lt;script&gt;window.__pwned" in html and "&lt;img src=&#34;x&#34; onerror=" in html
    store.close()


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "autodata", *args], capture_output=True, text=True, timeout=180, cwd=ROOT
    )


def test_a_run_in_progress_is_reviewed_as_it_grows(tmp_path):
    out = tmp_path / "growing"
    assert run_cli("run", "examples/quickstart.yaml", "--out", str(out), "--limit", "3", "-q").returncode == 0
    client, store = client_for(out)
    before = client.get("/").text
    assert count(before, "documents") == 3
    first = lines(out / "examples.jsonl")[0]
    url = item_url(first, next(e for e in lines(out / "episodes.jsonl") if e["document_id"] == first["document_id"]))
    client.post(url + "/approve", data={"csrf": csrf_of(before)})
    # the run goes on (a later session writes into the same store) while the server stays up
    assert run_cli("run", "examples/quickstart.yaml", "--out", str(out), "--limit", "6", "-q").returncode == 0
    after = client.get("/").text
    assert count(after, "documents") == 6
    assert count(after, "accepted") == len(lines(out / "examples.jsonl")) > count(before, "accepted")
    assert count(after, "approved") == 1
    store.close()


def test_review_command_errors(tmp_path):
    res = run_cli("review", str(tmp_path / "nothing"))
    assert res.returncode == 2 and "not a run directory" in res.stderr and "Traceback" not in res.stderr


def test_exact_answer_profile_pages_show_the_answer_read_in_code(verifiable_run):
    client, store = client_for(verifiable_run)
    ex, ep = first_accepted(verifiable_run)
    html = client.get(item_url(ex, ep)).text
    rnd = next(r for r in ep["rounds"] if r["decision"] and r["decision"]["accepted"])
    from markupsafe import escape

    for a in rnd["weak"] + rnd["strong"]:
        assert f"final answer, read in code: <code>{escape(a['extracted'])}</code>" in html
    assert "preset <b>verifiable</b>" in html
    store.close()

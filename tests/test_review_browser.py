"""A review session in real headless Chromium against `autodata review` itself: keyboard shortcuts,
approve / reject with a reason / edit, what the pages show, what the store holds afterwards, and
proof that markup placed in an example does not run."""

from __future__ import annotations

import json
import sqlite3

import pytest

from autodata.store.reviews import ReviewLog
from conftest import autodata_server, wait_until_answering
from test_review import XSS_QUESTION, plant_xss


@pytest.fixture
def server(run_copy):
    """`autodata review` on a free loopback port, over a run with planted markup payloads;
    yields (base URL, run dir, address of the planted example)."""
    url, _ = plant_xss(run_copy)
    with autodata_server("review", str(run_copy), "--port", "0", "--reviewer", "ada") as line:
        assert " on http://127.0.0.1:" in line, line
        base = line.split(" on ", 1)[1].strip().rstrip("/")
        wait_until_answering(base + "/favicon.ico", "autodata review")
        yield base, run_copy, url


def test_a_review_session_in_chromium(server, chromium):
    base, run_dir, xss_url = server
    page = chromium.new_page()
    dialogs: list[str] = []
    errors: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(base + "/")
    examples = [json.loads(x) for x in (run_dir / "examples.jsonl").read_text().splitlines()]
    rows = page.locator("tr[data-href]")
    assert rows.count() == len(examples) >= 3
    assert page.locator('[data-count="unreviewed"]').inner_text() == str(len(examples))

    # the first row is the example with the planted payloads; open it with the keyboard
    assert "selected" in (rows.nth(0).get_attribute("class") or "")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url.startswith(base + xss_url)
    assert page.locator("#question").inner_text() == XSS_QUESTION  # shown as text, literally
    assert page.locator("main img").count() == 0 and page.locator("main script").count() == 0
    assert page.evaluate("() => window.__pwned === undefined")
    assert "<img" in page.locator("#strong-1 .answer").inner_text()

    # a: approve
    with page.expect_navigation():
        page.keyboard.press("a")
    assert page.locator("#review-status").inner_text() == "approved"
    assert "by ada at" in page.locator("section.verdict").inner_text()

    # j: next example; r: reject with a reason typed into the focused field
    with page.expect_navigation():
        page.keyboard.press("j")
    second = page.url
    page.keyboard.press("r")
    assert page.evaluate("() => document.activeElement.hasAttribute('data-reject-reason')")
    page.keyboard.type("rubric rewards keyword lists")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url == second
    assert page.locator("#review-status").inner_text() == "rejected"
    assert page.locator("#review-reason").inner_text() == "rubric rewards keyword lists"

    # j, e: edit the third example's question and its first criterion's weight
    with page.expect_navigation():
        page.keyboard.press("j")
    third = page.url
    original = page.locator("#question").inner_text()
    page.keyboard.press("e")
    assert page.locator("details#edit").get_attribute("open") is not None
    page.locator("textarea[name=question]").fill("Reviewed: " + original)
    page.locator("input[name=weight]").first.fill("9")
    with page.expect_navigation():
        page.locator("form[data-action=edit] button[type=submit]").click()
    assert page.url == third
    assert page.locator("#question").inner_text() == "Reviewed: " + original
    assert page.locator("#edited-rubric li").first.inner_text().startswith("+9 ")
    page.locator("summary", has_text="original question").click()
    assert page.locator(".text.original").inner_text() == original

    # k walks back; u returns to the list, which counts the decisions
    with page.expect_navigation():
        page.keyboard.press("k")
    assert page.url == second
    with page.expect_navigation():
        page.keyboard.press("u")
    assert page.locator('[data-count="approved"]').inner_text() == "1"
    assert page.locator('[data-count="rejected"]').inner_text() == "1"
    assert page.locator('[data-count="edited"]').inner_text() == "1"
    assert page.evaluate("() => window.__pwned === undefined")
    assert dialogs == [] and errors == []

    # the store holds what was decided, with reviewer and time
    log = ReviewLog(sqlite3.connect(run_dir / "run.db"))
    events = log.events()
    assert [(e.action, e.reviewer) for e in events] == [("approve", "ada"), ("reject", "ada"), ("edit", "ada")]
    assert all(e.at > 0 for e in events)
    assert events[1].reason == "rubric rewards keyword lists"
    assert events[2].payload["question"] == "Reviewed: " + original
    assert events[2].payload["rubric"][0]["weight"] == 9
    assert events[0].example_id == examples[0]["id"]
    page.close()

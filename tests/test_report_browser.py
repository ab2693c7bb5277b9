"""The report file opened in real headless Chromium, offline: every figure decoded and shown.

Apart from test_report.py because Playwright's sync API keeps an event loop running while its
browser is open, and tests there run the optimizer with asyncio."""

from __future__ import annotations

from autodata.report.build import write_report
from test_report import FIGURE_IDS


def test_report_renders_in_chromium_offline_with_every_figure(sim_run, tmp_path, chromium):
    path, _ = write_report(sim_run, tmp_path / "report.html")
    page = chromium.new_page()
    outside = []
    page.route(
        "**/*",
        lambda route: (
            (outside.append(route.request.url), route.abort())
            if not route.request.url.startswith(("file:", "data:"))
            else route.continue_()
        ),
    )
    page.goto(path.as_uri())
    shown = page.evaluate(
        """() => Array.from(document.querySelectorAll('figure')).map(f => {
             const img = f.querySelector('img');
             return {id: f.id, complete: img.complete, w: img.naturalWidth, h: img.naturalHeight,
                     box: img.getBoundingClientRect().width};
           })"""
    )
    assert [f["id"] for f in shown] == FIGURE_IDS
    for f in shown:
        assert f["complete"] and f["w"] > 300 and f["h"] > 150 and f["box"] > 200, f
    assert outside == []
    assert page.locator("#headline").is_visible()
    page.close()

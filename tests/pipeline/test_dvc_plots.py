"""`dvc plots show` / `dvc plots diff` write pages that render in a real browser, offline."""

from __future__ import annotations

import pytest

from tests.helpers import run

pytestmark = [pytest.mark.pipeline, pytest.mark.browser]


def render(browser, page_path, tmp_path, name):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors, requests = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("request", lambda r: requests.append(r.url))
    page.goto(page_path.as_uri())
    page.wait_for_function("document.querySelectorAll('.vega-embed svg, .vega-embed canvas').length >= 6",
                           timeout=15_000)
    page.screenshot(path=tmp_path / f"{name}.png", full_page=True)
    charts = page.locator(".vega-embed").count()
    images = page.locator("img").count()
    page.close()
    return charts, images, page_path.read_text(), errors, [r for r in requests if not r.startswith(("file:", "data:"))]


def test_plots_show_renders_every_plot_offline(tiny_project, browser, tmp_path):
    run(["dvc", "plots", "show", "-o", str(tmp_path / "show")], tiny_project)
    charts, images, html, errors, remote = render(browser, tmp_path / "show/index.html", tmp_path, "show")
    assert charts == 6  # 2 confusion matrices, accuracy, loss, reliability, per-class F1
    assert images == 7  # the PNGs of the plot stage
    assert "Confusion matrix (test set)" in html and "Per-class F1 (test set)" in html
    assert errors == [] and remote == []


def test_plots_diff_compares_two_revisions(project, browser, tmp_path):
    from tests.helpers import set_params

    set_params(project, **{"train.lr": 0.01})
    run(["dvc", "repro"], project)
    run(["dvc", "plots", "diff", "HEAD", "-o", str(tmp_path / "diff")], project)
    page = (tmp_path / "diff/index.html").read_text()
    assert '"rev": "HEAD"' in page and '"rev": "workspace"' in page
    charts, _, _, errors, remote = render(browser, tmp_path / "diff/index.html", tmp_path, "diff")
    assert charts == 6 and errors == [] and remote == []

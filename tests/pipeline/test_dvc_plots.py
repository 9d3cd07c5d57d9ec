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


def test_a_model_of_many_classes_gets_a_confusion_matrix_and_f1_chart_a_row_each_can_be_read_in(browser, tmp_path):
    """DVC's own templates draw every chart 300 px tall: at 47 classes each row of the confusion matrix got 6 px
    and every label ran into its neighbours. The project's templates give each class a step of its own, so the
    charts grow with the classes (10 classes: 220 px, as before about)."""
    import csv
    import shutil

    import yaml

    from tests.helpers import ENV, ROOT

    project = tmp_path / "p"
    (project / "plots/data").mkdir(parents=True)
    run(["git", "init", "-q"], project)
    run(["dvc", "init", "-q"], project)
    shutil.copytree(ROOT / ".dvc/plots", project / ".dvc/plots")
    shutil.copy(ROOT / ".dvc/plots_page.html", project / ".dvc/plots_page.html")
    shutil.copy(ROOT / ".dvc/config", project / ".dvc/config")
    plots = [p for p in yaml.safe_load((ROOT / "dvc.yaml").read_text())["plots"]
             if isinstance(p, dict) and any(data in str(p) for data in ("predictions.csv", "per_class.csv"))]
    assert len(plots) == 3  # both confusion matrices and the per-class F1
    (project / "dvc.yaml").write_text(yaml.safe_dump({"plots": plots}, sort_keys=False))
    names = [f"upper_{chr(65 + i)}" for i in range(26)] + [f"lower_{chr(97 + i)}" for i in range(21)]
    with open(project / "plots/data/predictions.csv", "w", newline="") as f:
        rows = csv.writer(f)
        rows.writerow(["path", "actual", "predicted", "confidence"])
        rows.writerows([f"{n}/{k}.png", n, names[(i + k) % 47] if k == 3 else n, 0.9]
                       for k in range(4) for i, n in enumerate(names))
    with open(project / "plots/data/per_class.csv", "w", newline="") as f:
        rows = csv.writer(f)
        rows.writerow(["class", "precision", "recall", "f1", "support"])
        rows.writerows([n, 0.75, 0.75, 0.75, 4] for n in names)
    run(["dvc", "plots", "show", "-o", str(tmp_path / "show")], project, env=ENV)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto((tmp_path / "show/index.html").as_uri())
    page.wait_for_function("document.querySelectorAll('.vega-embed svg, .vega-embed canvas').length >= 3",
                           timeout=15_000)
    heights = [page.locator(".vega-embed").nth(k).bounding_box()["height"] for k in range(3)]
    page.close()
    assert all(h >= 47 * 22 for h in heights), heights  # a row of 22 px for each class, labels and all

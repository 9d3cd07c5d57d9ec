"""The draw-a-digit page in a real headless Chromium: draw with the mouse, upload, clear, phone size."""

from __future__ import annotations

import statistics

import numpy as np
import pytest
from PIL import Image

from tests.conftest import small_model_split
from tests.web.serving import serve

pytestmark = pytest.mark.browser

# strokes on the 280x280 board, in board pixels
STROKES = {
    "1": [[(140, 40), (140, 240)]],
    "0": [[(140 + 60 * np.sin(t), 140 - 95 * np.cos(t)) for t in np.linspace(0, 2 * np.pi, 40)]],
    "7": [[(70, 50), (210, 50), (120, 240)]],
}


@pytest.fixture(scope="module")
def server(small_model):
    proc, url = serve(small_model)
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def page(browser, server):
    page = browser.new_page(viewport={"width": 1100, "height": 700})
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server)
    page.wait_for_function("window.digitpipe && window.digitpipe.classes.length === 10")
    page.console_errors = errors
    yield page
    assert errors == []
    page.close()


def draw(page, digit: str) -> None:
    box = page.locator("#board").bounding_box()
    sx, sy = box["width"] / 280, box["height"] / 280
    for stroke in STROKES[digit]:
        points = []
        for (x0, y0), (x1, y1) in zip(stroke, stroke[1:], strict=False):
            points += [(x0 + (x1 - x0) * f, y0 + (y1 - y0) * f) for f in np.linspace(0, 1, 8, endpoint=False)]
        points.append(stroke[-1])
        page.mouse.move(box["x"] + points[0][0] * sx, box["y"] + points[0][1] * sy)
        page.mouse.down()
        for x, y in points[1:]:
            page.mouse.move(box["x"] + x * sx, box["y"] + y * sy)
        page.mouse.up()


def wait_for_answer(page, count: int) -> None:
    page.wait_for_function(f"window.digitpipe.latencies.length >= {count} && !window.digitpipe.busy")


def test_drawn_digits_are_recognised_and_fast(page, tmp_path):
    for n, digit in enumerate(["1", "0", "7"], start=1):
        page.click("#clear")
        draw(page, digit)
        wait_for_answer(page, n)
        page.wait_for_timeout(150)  # let a queued live update land
        assert page.inner_text("#digit") == digit
        assert page.locator(".bar.best").get_attribute("data-label") == digit
        page.screenshot(path=tmp_path / f"drawn_{digit}.png")
    latencies = page.evaluate("window.digitpipe.latencies")
    median = statistics.median(latencies)
    print(f"\nstroke end -> prediction shown: median {median:.0f} ms over {len(latencies)} strokes "
          f"(target <= 200 ms)")
    assert median <= 1000  # the 200 ms target is tracked in the printed figure; a busy CI box is slower


def test_clear_resets_the_page(page):
    draw(page, "1")
    wait_for_answer(page, 1)
    page.click("#clear")
    assert page.inner_text("#digit") == "?"
    assert page.locator(".bar.best").count() == 0
    blank = page.evaluate("""() => { const c = document.getElementById('board');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        return d.every(v => v === 255); }""")
    assert blank


def test_upload_an_image_file(page, tmp_path, mnist):
    images, labels = mnist
    i = small_model_split(labels)[2][7]
    path = tmp_path / "photo.png"
    Image.fromarray(255 - images[i]).resize((200, 200)).convert("RGB").save(path)
    page.set_input_files("#upload", str(path))
    page.wait_for_function("window.digitpipe.requests >= 1 && !window.digitpipe.busy")
    page.wait_for_function(f"document.getElementById('digit').textContent === '{labels[i]}'")


@pytest.mark.parametrize("name", ["notes.png", "notes.txt"])  # sent as image/png, and as plain bytes
def test_bad_upload_shows_a_message(page, tmp_path, name):
    path = tmp_path / name
    path.write_text("not an image")
    page.set_input_files("#upload", str(path))
    page.wait_for_function("document.getElementById('message').textContent.length > 0")
    assert "not an image" in page.inner_text("#message")
    assert all("400" in e for e in page.console_errors)  # the browser logs the refused upload
    page.console_errors.clear()


def test_phone_viewport_fits_without_sideways_scrolling(browser, server, tmp_path):
    page = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2, has_touch=True)
    page.goto(server)
    page.wait_for_function("window.digitpipe && window.digitpipe.classes.length === 10")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    board = page.locator("#board").bounding_box()
    assert board["width"] >= 250  # big enough to draw on with a finger
    page.screenshot(path=tmp_path / "phone.png", full_page=True)
    page.close()


def test_missing_model_is_explained_on_the_page(browser, tmp_path):
    proc, url = serve(tmp_path / "missing.keras")
    try:
        page = browser.new_page()
        page.goto(url)
        page.wait_for_function("document.getElementById('message').textContent.length > 0")
        assert "dvc repro" in page.inner_text("#message")
        page.close()
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert "run `dvc repro` first" in err

"""The draw-a-digit page in a real headless Chromium: draw with the mouse, upload, clear, phone size."""

from __future__ import annotations

import shutil
import statistics
import time
from dataclasses import replace

import httpx
import numpy as np
import pytest
from PIL import Image

from digitpipe.card import read_card
from tests.helpers import small_model_split
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


# records what the page's Content-Security-Policy blocks (Chromium also logs each as a console error)
WATCH_POLICY = """window.policyViolations = [];
document.addEventListener("securitypolicyviolation",
                          (e) => window.policyViolations.push(`${e.violatedDirective} ${e.blockedURI}`));"""


def wait_until(page, expression: str, timeout: float = 30) -> None:
    """Wait until a JavaScript expression is true, checking it in the page on every animation frame.

    Playwright's own ``wait_for_function`` compiles its predicate with ``eval()`` inside the page, which
    the page's Content-Security-Policy rightly forbids; a function passed to ``evaluate`` is compiled
    by the browser's debugging protocol instead, which the policy does not govern. Checking on animation
    frames, as ``wait_for_function`` does, keeps a headless page rendering like a visible one (a page that
    draws no frames is the case of :func:`test_a_stroke_is_answered_at_once_even_when_the_page_draws_no_frames`)."""
    ms = int(timeout * 1000)
    met = page.evaluate(f"""() => new Promise((resolve) => {{
        const until = performance.now() + {ms};
        const check = () => (({expression}) ? resolve(true)
                             : performance.now() > until ? resolve(false) : requestAnimationFrame(check));
        check();
    }})""")
    if not met:
        raise AssertionError(f"still false after {timeout} s: {expression}\nthe page: {page.evaluate(PAGE_STATE)}")


# what the page shows and is doing, for the message of a wait that failed
PAGE_STATE = """() => ({digit: document.getElementById('digit').textContent,
    message: document.getElementById('message').textContent, bars: document.querySelectorAll('.bar').length,
    best: [...document.querySelectorAll('.bar.best')].map((b) => b.dataset.label), classes: window.digitpipe.classes,
    busy: window.digitpipe.busy, queued: window.digitpipe.queued, dirty: window.digitpipe.dirty,
    requests: window.digitpipe.requests})"""


@pytest.fixture
def page(browser, server):
    page = browser.new_page(viewport={"width": 1100, "height": 700})
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.add_init_script(WATCH_POLICY)
    page.goto(server)
    wait_until(page, "window.digitpipe && window.digitpipe.classes.length === 10")
    page.console_errors = errors
    yield page
    assert errors == []
    assert page.evaluate("window.policyViolations") == []
    page.close()


def draw(page, digit: str | list) -> None:
    """Draw one of :data:`STROKES` (by its digit), or the strokes given, with the mouse."""
    box = page.locator("#board").bounding_box()
    sx, sy = box["width"] / 280, box["height"] / 280
    for stroke in STROKES[digit] if isinstance(digit, str) else digit:
        points = []
        for (x0, y0), (x1, y1) in zip(stroke, stroke[1:], strict=False):
            points += [(x0 + (x1 - x0) * f, y0 + (y1 - y0) * f) for f in np.linspace(0, 1, 8, endpoint=False)]
        points.append(stroke[-1])
        page.mouse.move(box["x"] + points[0][0] * sx, box["y"] + points[0][1] * sy)
        page.mouse.down()
        for x, y in points[1:]:
            page.mouse.move(box["x"] + x * sx, box["y"] + y * sy)
        page.mouse.up()


def hold_the_first(held: list):
    """A route handler that never answers the first request it sees (kept in ``held``, so it stays open, as a
    reply lost on the way does) and lets every later one through to the server."""
    def handle(route):
        if held:
            route.fallback()
        else:
            held.append(route)
    return handle


def wait_for_answer(page, count: int) -> None:
    wait_until(page, f"window.digitpipe.latencies.length >= {count} && !window.digitpipe.busy")


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


def test_a_stroke_is_answered_at_once_even_when_the_page_draws_no_frames(page):
    """Waiting from outside the page (no animation frames asked for), as a busy or hidden tab is: Chromium's
    canvas.toBlob() waits for an idle moment that never comes, up to a second; the page encodes the drawing at
    once instead (toBlob measured 1,013 ms here on two strokes in five, this page 16 to 35 ms)."""
    for n, digit in enumerate(["1", "0", "7", "1"], start=1):
        page.click("#clear")
        draw(page, digit)
        until = time.monotonic() + 10
        while (page.evaluate("window.digitpipe.latencies.length") < n or page.evaluate("window.digitpipe.busy")) \
                and time.monotonic() < until:
            time.sleep(0.02)
    latencies = page.evaluate("window.digitpipe.latencies")
    assert len(latencies) >= 4 and max(latencies) < 500, latencies


def test_a_page_opened_while_its_server_cannot_be_reached_comes_right_by_itself(browser, server):
    """The first status calls fail (the server restarting, say): the page says so, tries again, and then answers
    what was drawn meanwhile, with its bars, with no reload."""
    page = browser.new_page(viewport={"width": 1100, "height": 700})
    down, calls = [True], []
    # the server comes back when `down` is cleared (a flag, not unroute(), so no request is caught mid-change)
    page.route("**/api/status", lambda route: (calls.append(down[0]), route.abort() if down[0] else route.fallback()))
    page.goto(server)
    wait_until(page, "document.getElementById('message').textContent.includes('cannot be reached')")
    draw(page, "7")
    down[0] = False
    wait_until(page, "window.digitpipe.classes.length === 10 && document.querySelectorAll('.bar').length === 10 "
                     "&& document.getElementById('digit').textContent === '7'", timeout=15)
    assert page.inner_text("#message") == ""
    assert page.locator(".bar.best").get_attribute("data-label") == "7"
    assert calls[0] is True and calls[-1] is False  # refused at first, then answered
    page.close()


def test_a_status_call_left_unanswered_is_given_up_and_tried_again(browser, server):
    """The first status request is never answered (a reply lost on the way): the page gives up on it after its
    status timeout, says so, and the next try brings the page up."""
    page = browser.new_page(viewport={"width": 1100, "height": 700})
    held = []
    page.route("**/api/status", hold_the_first(held))
    page.goto(server)
    wait_until(page, "document.getElementById('message').textContent.includes('cannot be reached')", timeout=10)
    assert page.evaluate("window.digitpipe.classes.length") == 0
    wait_until(page, "window.digitpipe.classes.length === 10 && document.querySelectorAll('.bar').length === 10 "
                     "&& document.getElementById('message').textContent === ''", timeout=10)
    assert len(held) == 1
    page.close()


@pytest.mark.parametrize("browser_kind", ["current", "without AbortSignal.timeout"])
def test_a_prediction_left_unanswered_is_given_up_and_the_drawing_sent_again(browser, server, browser_kind):
    """A predict request whose reply never comes must not leave the page waiting for it for ever, with every
    later stroke queued behind it: after the timeout the page says so and sends the drawing as it now stands.
    Also in a browser without AbortSignal.timeout (Safari before 16), where the page sets its own timer."""
    page = browser.new_page(viewport={"width": 1100, "height": 700})
    if browser_kind != "current":
        page.add_init_script("AbortSignal.timeout = undefined;")
    page.goto(server)
    wait_until(page, "window.digitpipe && window.digitpipe.classes.length === 10")
    assert page.evaluate("typeof AbortSignal.timeout") == ("function" if browser_kind == "current" else "undefined")
    held = []
    page.route("**/api/predict", hold_the_first(held))
    # 4 s: short for a test, and long enough that the drawing sent again after the timeout is answered within
    # it on a machine busy with other browser tests (with 2 s it sometimes was not)
    page.evaluate("""() => { window.digitpipe.timeouts.drawing = 4000; window.messages = [];
        const el = document.getElementById('message');
        new MutationObserver(() => window.messages.push(el.textContent)).observe(el, {childList: true}); }""")
    draw(page, "1")  # the first live update is held; the finished stroke queues behind it
    wait_until(page, "document.getElementById('digit').textContent === '1' && !window.digitpipe.busy", timeout=20)
    assert "The server did not answer within 4 seconds; draw or upload again." in page.evaluate("window.messages")
    assert page.inner_text("#message") == "" and len(held) == 1
    page.click("#clear")
    draw(page, "7")
    wait_until(page, "document.getElementById('digit').textContent === '7' && !window.digitpipe.busy", timeout=10)
    page.close()


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


def test_upload_an_image_file(page, server, tmp_path, mnist):
    from digitpipe.output import percent

    images, labels = mnist
    path = tmp_path / "photo.png"
    # a held-out digit the small model reads right and at least as surely as the page's level: which digits
    # those are depends on a CPU's bits, so the first such one (the page below the level has its own test)
    for i in small_model_split(labels)[2][7:40]:
        Image.fromarray(255 - images[i]).resize((200, 200)).convert("RGB").save(path)
        answer = httpx.post(server + "api/predict", content=path.read_bytes(),
                            headers={"content-type": "image/png"}, timeout=30).json()
        if answer["label"] == str(labels[i]) and not answer["unsure"]:
            break
    else:
        pytest.fail("the small model read none of 33 held-out digits right and surely")
    page.set_input_files("#upload", str(path))
    wait_until(page, "window.digitpipe.requests >= 1 && !window.digitpipe.busy")
    wait_until(page, f"document.getElementById('digit').textContent === '{labels[i]}'")
    # every percentage on the page is predict's: a bar never rounds to 100% or 0.0% that the model did not say
    shown = {q["label"]: percent(q["p"]) for q in answer["probabilities"]}
    assert page.inner_text("#confidence") == f"{shown[str(labels[i])]} sure"
    bars = page.locator(".bar")
    assert {bars.nth(k).get_attribute("data-label"): bars.nth(k).locator(".pct").inner_text()
            for k in range(bars.count())} == shown


def test_an_answer_below_the_min_confidence_says_not_sure_and_names_the_runner_up(browser, small_model, mnist,
                                                                                  tmp_path):
    from digitpipe.output import percent

    proc, url = serve(small_model, "--min-confidence", "0.9999")
    try:
        page = browser.new_page(viewport={"width": 1100, "height": 700})
        page.goto(url)
        wait_until(page, "window.digitpipe && window.digitpipe.classes.length === 10")
        images, labels = mnist
        path = tmp_path / "digit.png"
        Image.fromarray(255 - images[small_model_split(labels)[2][5]]).resize((200, 200)).save(path)
        answer = httpx.post(url + "api/predict", content=path.read_bytes(), headers={"content-type": "image/png"},
                            timeout=30).json()
        assert answer["unsure"] is True and answer["confidence"] < 0.9999
        page.set_input_files("#upload", str(path))
        wait_until(page, "window.digitpipe.requests >= 1 && !window.digitpipe.busy")
        label, runner_up = sorted(answer["probabilities"], key=lambda q: -q["p"])[:2]
        assert page.inner_text("#digit") == answer["label"] == label["label"]
        assert page.inner_text("#confidence") == (f"Not sure: {percent(label['p'])}; "
                                                  f"maybe {runner_up['label']} ({percent(runner_up['p'])})")
        assert page.inner_text("#said") == (f"Not sure: reads {label['label']}, {percent(label['p'])}; "
                                            f"maybe {runner_up['label']}, {percent(runner_up['p'])}.")
        assert "unsure" in page.get_attribute("#digit", "class")
        assert page.locator(".bar.best.unsure").get_attribute("data-label") == label["label"]

        # just below the level, an answer that would round up to it shows rounded down, header and bar alike
        near = {**answer, "confidence": 0.99985, "probabilities": [
            {"label": q["label"], "p": 0.99985 if q["label"] == label["label"] else 0.00015 / 9}
            for q in answer["probabilities"]]}
        page.route("**/api/predict", lambda route: route.fulfill(json=near))
        page.click("#clear")
        page.set_input_files("#upload", str(path))
        wait_until(page, "window.digitpipe.requests >= 2 && !window.digitpipe.busy")
        assert page.inner_text("#confidence").startswith("Not sure: 99.9%; maybe ")  # not ">99.9%", not 100%
        assert page.locator(".bar.best .pct").inner_text() == "99.9%"

        # a sure answer takes the marks off again
        page.unroute("**/api/predict")
        page.route("**/api/predict", lambda route: route.fulfill(json={**near, "unsure": False}))
        page.click("#clear")
        page.set_input_files("#upload", str(path))
        wait_until(page, "window.digitpipe.requests >= 3 && !window.digitpipe.busy")
        assert page.inner_text("#confidence") == ">99.9% sure"
        assert "unsure" not in page.get_attribute("#digit", "class") and page.locator(".bar.unsure").count() == 0
        page.close()
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_blank_upload_says_nothing_to_classify_in_predicts_words(page, tmp_path):
    path = tmp_path / "blank.png"
    Image.new("L", (120, 120), 255).save(path)
    page.set_input_files("#upload", str(path))
    wait_until(page, "window.digitpipe.requests >= 1 && !window.digitpipe.busy")
    assert page.inner_text("#digit") == "?"
    assert page.inner_text("#confidence") == "Nothing to classify: every pixel has the gray value 255."


@pytest.mark.parametrize("name", ["notes.png", "notes.txt"])  # sent as image/png, and as plain bytes
def test_bad_upload_shows_a_message(page, tmp_path, name):
    path = tmp_path / name
    path.write_text("not an image")
    page.set_input_files("#upload", str(path))
    wait_until(page, "document.getElementById('message').textContent.length > 0")
    assert "not an image" in page.inner_text("#message")
    assert all("400" in e for e in page.console_errors)  # the browser logs the refused upload
    page.console_errors.clear()


ANSWER_SHOWN = "document.querySelectorAll('.bar.best').length"


def test_a_refused_upload_takes_the_last_answer_off_the_page(page, tmp_path):
    draw(page, "1")
    wait_for_answer(page, 1)
    assert page.inner_text("#digit") == "1" and page.evaluate(ANSWER_SHOWN) == 1
    for name, body in [("notes.txt", b"not an image"), ("blank.png", None)]:
        path = tmp_path / name
        if body is None:
            Image.new("L", (120, 120), 255).save(path)
        else:
            path.write_bytes(body)
        sent = page.evaluate("window.digitpipe.requests")
        page.set_input_files("#upload", str(path))
        wait_until(page, f"window.digitpipe.requests > {sent} && !window.digitpipe.busy")
        assert page.inner_text("#digit") == "?"
        assert page.evaluate(ANSWER_SHOWN) == 0  # no bar stays lit beside the refusal
        assert page.locator(".bar .pct").all_inner_texts() == [""] * 10  # no figure, not a 0% the model never said
    assert page.inner_text("#confidence") == "Nothing to classify: every pixel has the gray value 255."
    page.console_errors.clear()  # the browser logs the refused upload


INKED = """() => { const d = document.getElementById('board').getContext('2d').getImageData(0, 0, 280, 280).data;
                   let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] < 128) n++; return n; }"""


@pytest.mark.parametrize("dx", [-132, 132])
def test_a_stroke_along_the_boards_edge_is_read_as_part_of_the_drawing(page, dx):
    """A 1 drawn along the left or right edge: taken for the edge of a dark desk around a photographed page, it was
    cut away and the page said nothing stood out from the background."""
    box = page.locator("#board").bounding_box()
    sx, sy = box["width"] / 280, box["height"] / 280
    page.mouse.move(box["x"] + (140 + dx) * sx, box["y"] + 40 * sy)
    page.mouse.down()
    for y in np.linspace(40, 240, 12)[1:]:
        page.mouse.move(box["x"] + (140 + dx) * sx, box["y"] + y * sy)
    page.mouse.up()
    wait_for_answer(page, 1)
    page.wait_for_timeout(150)  # let a queued live update land
    assert page.inner_text("#digit") == "1", page.inner_text("#confidence")


def test_an_upload_the_server_refuses_leaves_the_board_and_is_not_sent_with_the_next_stroke(page, tmp_path):
    """A 36-megapixel picture of a 2 is shown on the board and refused (over the page's 25 megapixels): it must go
    from the board, or the next stroke is drawn on it and the refused picture classified after all."""
    path = tmp_path / "huge.png"
    big = Image.new("L", (6000, 6000), 255)
    big.paste(0, (2500, 1500, 3500, 4500))
    big.save(path)
    page.set_input_files("#upload", str(path))
    wait_until(page, "document.getElementById('message').textContent.includes('too large')", timeout=30)
    page.wait_for_timeout(500)  # a preview decoded after the refusal must not be drawn either
    assert page.evaluate(f"({INKED})()") == 0
    assert not page.evaluate("window.digitpipe.dirty")
    draw(page, "1")
    wait_for_answer(page, 1)
    page.wait_for_timeout(150)
    assert page.inner_text("#digit") == "1"
    page.console_errors.clear()  # the browser logs the refused upload


def test_a_digit_drawn_small_gets_a_hint_to_draw_it_bigger(page):
    """The pen keeps its width, so a small digit is thick strokes once scaled up and read less surely: the page
    says to draw bigger, and says nothing of the kind for a digit drawn large."""
    draw(page, [[(140 + (x - 140) * 0.25, 140 + (y - 140) * 0.25) for x, y in stroke] for stroke in STROKES["7"]])
    wait_for_answer(page, 1)
    wait_until(page, "document.getElementById('message').textContent.startsWith('Drawn small')")
    assert page.locator("#message").get_attribute("class") == "info"
    page.click("#clear")
    draw(page, "7")
    wait_for_answer(page, 2)
    page.wait_for_timeout(150)
    assert page.inner_text("#message") == ""


def test_a_file_over_the_upload_limit_is_refused_by_the_page_before_it_is_sent(page, tmp_path):
    limit = page.evaluate("window.digitpipe.maxUpload")
    assert limit == 5 * 2**20
    path = tmp_path / "photo.jpg"
    path.write_bytes(b"\xff\xd8\xff" + bytes(limit))
    page.set_input_files("#upload", str(path))
    wait_until(page, "document.getElementById('message').textContent.length > 0", timeout=10)
    assert page.inner_text("#message") == ("photo.jpg is 5.0 MB; the page takes files up to 5 MB: save the picture "
                                           "smaller (a lower resolution) and upload that.")
    assert page.evaluate("window.digitpipe.requests") == 0 and page.inner_text("#digit") == "?"


def test_a_server_lost_mid_session_is_looked_for_and_the_drawing_answered_when_it_is_back(page):
    """The server goes away while the page is open (a restart): the stroke's request fails, the page says so and
    looks for the server every few seconds, and once it answers the message goes and the drawing is answered,
    with no second stroke needed."""
    down = [True]
    page.route("**/api/predict", lambda route: route.abort() if down[0] else route.fallback())
    page.route("**/api/status", lambda route: route.abort() if down[0] else route.fallback())
    draw(page, "1")
    wait_until(page, "document.getElementById('message').textContent.includes('cannot be reached')", timeout=10)
    assert page.inner_text("#digit") == "?"
    down[0] = False
    wait_until(page, "document.getElementById('digit').textContent === '1' && !window.digitpipe.busy", timeout=15)
    assert page.inner_text("#message") == ""
    page.console_errors.clear()  # the browser logs each refused connection


def test_clear_wins_over_an_answer_still_on_its_way(page):
    """On a slow connection the answer to a drawing arrives after Clear: it must not redraw the old result."""
    routed = []

    def slow(route):
        routed.append(route.request)
        page.wait_for_timeout(600)
        route.continue_()

    page.route("**/api/predict", slow)
    draw(page, "7")
    page.click("#clear")
    for _ in range(150):  # until every request the drawing sent has had its reply (the page counts replies)
        if page.evaluate("window.digitpipe.requests") >= len(routed) > 0 and not page.evaluate("window.digitpipe.busy"):
            break
        page.wait_for_timeout(100)
    assert routed and page.evaluate("window.digitpipe.requests") == len(routed)
    assert page.inner_text("#digit") == "?" and page.evaluate(ANSWER_SHOWN) == 0
    assert page.inner_text("#confidence") == "Draw a digit to see what the model reads."
    page.unroute("**/api/predict")


def test_a_second_finger_draws_nothing(page):
    """Only the first pointer draws: a second finger or a resting palm would join the strokes into a blob."""
    box = page.locator("#board").bounding_box()
    page.mouse.move(box["x"] + 140 * box["width"] / 280, box["y"] + 40 * box["height"] / 280)
    page.mouse.down()
    page.evaluate("""() => { const b = document.getElementById('board'), r = b.getBoundingClientRect();
        const at = (x) => ({ pointerId: 7, isPrimary: false, pointerType: 'touch', bubbles: true,
                             clientX: r.left + x * r.width / 280, clientY: r.top + 250 * r.height / 280 });
        b.dispatchEvent(new PointerEvent('pointerdown', at(20)));
        for (let x = 20; x <= 260; x += 10) b.dispatchEvent(new PointerEvent('pointermove', at(x)));
        b.dispatchEvent(new PointerEvent('pointerup', at(260))); }""")
    for y in np.linspace(40, 240, 12):
        page.mouse.move(box["x"] + 140 * box["width"] / 280, box["y"] + y * box["height"] / 280)
    page.mouse.up()
    wait_for_answer(page, 1)
    assert page.inner_text("#digit") == "1"
    ink = page.evaluate("""() => { const d = document.getElementById('board').getContext('2d')
        .getImageData(0, 244, 100, 12).data; let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] < 128) n++;
        return n; }""")
    assert ink == 0  # the second pointer's line along y = 250 was never drawn (left of the 1's own stroke)


def test_keyboard_reaches_clear_and_upload_and_a_screen_reader_hears_each_answer_once(page):
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "clear"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "upload"  # opens the file chooser with Enter or Space
    draw(page, "1")
    wait_for_answer(page, 1)
    wait_until(page, "document.getElementById('said').textContent.length > 0")
    assert page.inner_text("#said") == f"Reads 1, {page.inner_text('#confidence')}."
    assert page.get_attribute("#said", "aria-live") == "polite"
    assert page.locator("[aria-live]").count() == 1  # the bars and the live updates while drawing are not read out


def test_the_page_works_under_its_content_security_policy(page, server, tmp_path, mnist):
    """The policy forbids everything the page does not use; drawing, the 28x28 preview (a data: URL),
    the uploaded file on the board (a blob: URL) and the API calls must all still work."""
    policy = page.request.get(server).headers["content-security-policy"]
    assert "default-src 'none'" in policy
    draw(page, "1")
    wait_for_answer(page, 1)
    assert page.inner_text("#digit") == "1"
    lit = """() => { const d = document.getElementById('seen').getContext('2d').getImageData(0, 0, 28, 28).data;
                     let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] > 128) n++; return n; }"""
    wait_until(page, f"({lit})() >= 20")  # the white digit the model saw, on black
    images, _ = mnist
    path = tmp_path / "upload.png"
    Image.fromarray(255 - images[0]).resize((200, 200)).save(path)
    page.click("#clear")
    page.set_input_files("#upload", str(path))
    wait_until(page, "window.digitpipe.requests >= 2 && !window.digitpipe.busy")
    wait_until(page, f"({INKED})() >= 200")  # the uploaded digit shown on the board


def test_phone_viewport_fits_without_sideways_scrolling(browser, server, tmp_path):
    page = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2, has_touch=True)
    page.goto(server)
    wait_until(page, "window.digitpipe && window.digitpipe.classes.length === 10")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    board = page.locator("#board").bounding_box()
    assert board["width"] >= 250  # big enough to draw on with a finger
    page.screenshot(path=tmp_path / "phone.png", full_page=True)
    page.close()


@pytest.mark.parametrize("width", [645, 700, 760])
def test_a_window_too_narrow_for_both_cards_at_full_width_keeps_the_answer_beside_the_board(browser, server, width):
    """Between a phone's width and the cards' full widths (a tablet held upright, a window beside another) the
    answer went under the board, out of view; the cards narrow instead, and the answer's digit stays large."""
    page = browser.new_page(viewport={"width": width, "height": 600})
    page.goto(server)
    wait_until(page, "window.digitpipe && window.digitpipe.classes.length === 10")
    draw(page, "7")
    wait_for_answer(page, 1)
    wait_until(page, "document.getElementById('digit').textContent === '7'")
    pad, result = page.locator("#pad").bounding_box(), page.locator("#result").bounding_box()
    assert result["x"] >= pad["x"] + pad["width"] and result["y"] == pad["y"]
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert page.get_attribute("#digit", "class") in ("", None)  # not the small type of a long name
    page.close()


@pytest.mark.parametrize("size", [(640, 360), (568, 320), (844, 390)])
def test_a_phone_held_sideways_shows_the_answer_beside_the_board_while_drawing(browser, server, tmp_path, size):
    """Landscape phones: the board fits the screen's height with the answer beside it, so the digit and its
    confidence are in view as the stroke ends, with no scrolling (the stacked phone layout put them 650 px down)."""
    page = browser.new_page(viewport={"width": size[0], "height": size[1]}, has_touch=True)
    page.goto(server)
    wait_until(page, "window.digitpipe && window.digitpipe.classes.length === 10")
    draw(page, "7")
    wait_for_answer(page, 1)
    wait_until(page, "document.getElementById('digit').textContent === '7'")
    board = page.locator("#board").bounding_box()
    for part in ("#digit", "#confidence"):
        box = page.locator(part).bounding_box()
        assert box["x"] >= board["x"] + board["width"], (part, box, board)  # beside the board, not under it
        assert box["y"] >= 0 and box["y"] + box["height"] <= size[1], (part, box)  # in view
    assert board["y"] + board["height"] <= size[1] and board["width"] >= 150, board
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=tmp_path / f"sideways-{size[0]}.png")
    page.close()


def test_on_a_small_phone_a_refusal_is_in_view_and_a_sentence_keeps_its_words_together(browser, server, tmp_path):
    """375x667: the reason a file was refused shows without scrolling by hand; 320x568: "nothing to classify"
    beside the answer gets room for a few words a line, not one."""
    page = browser.new_page(viewport={"width": 375, "height": 667}, has_touch=True)
    page.goto(server)
    wait_until(page, "window.digitpipe && window.digitpipe.classes.length === 10")
    (tmp_path / "notes.png").write_text("not an image")
    page.set_input_files("#upload", str(tmp_path / "notes.png"))
    wait_until(page, "document.getElementById('message').textContent.includes('not an image')")
    box = page.evaluate("(() => { const r = document.getElementById('message').getBoundingClientRect();"
                        " return [r.top, r.bottom, window.innerHeight]; })()")
    assert box[0] >= 0 and box[1] <= box[2], box
    page.set_viewport_size({"width": 320, "height": 568})
    Image.new("L", (200, 200), 255).save(tmp_path / "blank.png")
    page.set_input_files("#upload", str(tmp_path / "blank.png"))
    wait_until(page, "document.getElementById('confidence').textContent.startsWith('Nothing to classify')")
    width = page.evaluate("document.getElementById('confidence').getBoundingClientRect().width")
    assert width >= 120, width  # 90 px (a word or two a line) before
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.close()


INSIDE = """([inner, outer]) => { const a = document.querySelector(inner).getBoundingClientRect();
    const b = document.querySelector(outer).getBoundingClientRect();
    return a.width > 0 && a.left >= b.left - 0.5 && a.right <= b.right + 0.5; }"""
APART = """([one, two]) => { const a = document.querySelector(one).getBoundingClientRect();
    const b = document.querySelector(two).getBoundingClientRect();
    return a.right <= b.left || b.right <= a.left || a.bottom <= b.top || b.bottom <= a.top; }"""


@pytest.mark.parametrize("long", ["class_with_a_very_long_name_indeed", "cat"])
def test_long_class_names_leave_the_answer_readable_on_a_desk_and_on_a_phone(browser, small_model, tmp_path, mnist,
                                                                              long):
    """A long name takes a row of its own and wraps between its words; the confidence and the runner-up stay
    beside the 28x28 view, inside the card, and the phone does not scroll sideways. A short name in big letters
    (`cat`) leaves the confidence room to read too."""
    from digitpipe.training import stabilise_keras_file

    classes = [f"left turn arrow {i}" for i in range(10)]
    classes[7] = long
    named = tmp_path / "long.keras"
    shutil.copy(small_model, named)
    stabilise_keras_file(named, replace(read_card(small_model), classes=classes))
    images, labels = mnist
    unseen = small_model_split(labels)[2]
    seven = tmp_path / "seven.png"
    Image.fromarray(images[unseen][labels[unseen] == 7][0]).save(seven)
    proc, url = serve(named, "--min-confidence", "0.9999")  # unsure, so the runner-up is named too
    try:
        for viewport in ({"width": 1100, "height": 700}, {"width": 390, "height": 844}):
            page = browser.new_page(viewport=viewport)
            page.goto(url)
            wait_until(page, "window.digitpipe && window.digitpipe.classes.length === 10")
            assert "digit" not in page.get_attribute("#board", "aria-label")
            page.set_input_files("#upload", str(seven))
            wait_until(page, "document.getElementById('digit').textContent !== '?'")
            assert page.inner_text("#digit") == long and page.locator("#digit wbr").count() == long.count("_")
            assert page.inner_text("#confidence").startswith("Not sure: ")
            assert "maybe left turn arrow" in page.inner_text("#confidence")
            for inner in ("#digit", "#confidence", ".seen"):
                assert page.evaluate(INSIDE, [inner, "#result"]), inner
            assert page.evaluate(APART, ["#confidence", ".seen"]) and page.evaluate(APART, ["#digit", "#confidence"])
            assert page.locator("#confidence").bounding_box()["width"] >= 120  # room to read, not a sliver
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
            page.screenshot(path=tmp_path / f"long-{viewport['width']}.png", full_page=True)
            page.close()
    finally:
        proc.terminate()
        proc.wait(10)


def test_missing_model_is_explained_on_the_page(browser, tmp_path):
    proc, url = serve(tmp_path / "missing.keras")
    try:
        page = browser.new_page()
        page.goto(url)
        wait_until(page, "document.getElementById('message').textContent.length > 0")
        # one remedy, and the model by its name: a page served to the network does not show the server's paths
        assert page.inner_text("#message") == ("Model missing.keras not found: check the path; the server loads it "
                                               "once it is there.")
        page.close()
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert "missing.keras not found: check the path; the page will say so too" in err


def test_a_model_of_other_classes_gets_its_own_words(browser, small_model, tmp_path, mnist):
    from digitpipe.training import stabilise_keras_file  # rewrites a .keras archive with the card given

    classes = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "<b>nine</b>"]
    named = tmp_path / "named.keras"
    shutil.copy(small_model, named)
    stabilise_keras_file(named, replace(read_card(small_model), classes=classes))
    proc, url = serve(named)
    try:
        page = browser.new_page(viewport={"width": 1100, "height": 700})
        page.goto(url)
        wait_until(page, "window.digitpipe && window.digitpipe.classes.length === 10")
        assert page.inner_text("h1") == "Draw and classify"
        assert "digit" not in page.inner_text("header") and "zero, one, two" in page.inner_text("header")
        assert page.title() == "digitpipe: draw and classify"
        # a class name is shown as text, never parsed as markup
        assert page.locator("#bars b").count() == 0
        assert page.inner_text("#bars").count("<b>nine</b>") == 1
        images, labels = mnist
        unseen = small_model_split(labels)[2]
        seven = tmp_path / "seven.png"
        Image.fromarray(images[unseen][labels[unseen] == 7][0]).save(seven)
        page.set_input_files("#upload", str(seven))
        wait_until(page, "document.getElementById('digit').textContent !== '?'")
        assert page.inner_text("#digit") == "seven"
        assert page.inner_text("#bars .best .name") == "seven"
        # the label fits its card: no sideways scrolling
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        page.close()
    finally:
        proc.terminate()
        proc.wait(10)
    assert proc.stdout.readline().startswith(f"digitpipe: draw and classify at {url} ")  # the terminal's words too


def test_the_page_follows_the_model_its_server_picks_up_and_every_retrained_one_after(browser, small_model, tmp_path):
    """A server started before its model (a fresh clone before `dvc repro`) picks the model up once it is written,
    and every model written over it after (a retrain); an answer from another model brings that model's classes
    to the page (its words and bars) before it is shown, with no reload."""
    from digitpipe.training import stabilise_keras_file

    path = tmp_path / "model.keras"
    words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    named = tmp_path / "named.keras"
    shutil.copy(small_model, named)
    stabilise_keras_file(named, replace(read_card(small_model), classes=words))

    def put(source) -> str:
        """Write ``source`` over the model as training does (a new file renamed over it); the id it gets."""
        tmp = tmp_path / ".model.keras.tmp"
        shutil.copy(source, tmp)
        tmp.replace(path)
        deadline = time.monotonic() + 60
        while (status := httpx.get(url + "api/status", timeout=30).json())["problem"] is not None \
                or status["model_id"] == ids[-1]:  # the page's own requests would do; this only makes it sooner
            assert time.monotonic() < deadline, status
            time.sleep(0.2)
        ids.append(status["model_id"])
        return status["model_id"]

    def answered(expected: str, digit: str) -> None:
        page.click("#clear")
        draw(page, digit)
        wait_until(page, f"document.getElementById('digit').textContent === '{expected}' && !window.digitpipe.busy")

    ids = [None]
    proc, url = serve(path)
    try:
        page = browser.new_page(viewport={"width": 1100, "height": 700})
        page.goto(url)
        wait_until(page, "document.getElementById('message').textContent.length > 0")
        assert page.inner_text("#message") == ("Model model.keras not found: check the path; the server loads it once "
                                               "it is there.")
        first = put(small_model)
        answered("1", "1")
        assert page.evaluate("window.digitpipe.model") == first and page.inner_text("#message") == ""
        second = put(named)
        answered("seven", "7")  # the new model's class name, with its own bars and words
        assert page.evaluate("window.digitpipe.model") == second
        assert page.inner_text("#bars .best .name") == "seven" and page.locator(".bar").count() == 10
        assert page.inner_text("h1") == "Draw and classify" and "zero, one, two" in page.inner_text("header")
        third = put(small_model)  # back to the digits: the page's own words again
        answered("7", "7")
        assert page.evaluate("window.digitpipe.model") == third == first
        assert page.inner_text("h1") == "Draw a digit" and page.title() == "digitpipe: draw a digit"
        assert page.inner_text("#bars .best .name") == "7"
        page.close()
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    lines = out.splitlines()
    assert lines[0] == f"digitpipe: draw a digit at {url}  (Ctrl+C to stop)"
    assert [line.split(" (")[0] for line in lines[1:]] == ["digitpipe: now answering with model.keras"] * 3
    assert [line.split(" (")[1][:12] for line in lines[1:]] == [first, second, third]
    assert "Traceback" not in err


def model_of_classes(small_model, path, classes: list[str]):
    """An untrained model with one output per class of ``classes``, with the small model's card otherwise."""
    from digitpipe.models import make_model
    from digitpipe.training import stabilise_keras_file

    make_model("mini", num_classes=len(classes)).save(path)
    stabilise_keras_file(path, replace(read_card(small_model), classes=classes))
    return path


NAMES_CUT = """[...document.querySelectorAll('.bar:not([hidden]) .name')].filter(
    (n) => n.scrollWidth > n.clientWidth || n.innerText.replace(/\\s/g, '') !== n.parentElement.dataset.label).length"""


def test_long_class_names_are_shown_whole_and_many_classes_show_the_likeliest_first(browser, small_model, tmp_path):
    """Cut to a common width, "Neutrophil_segmented" and "Neutrophil_band" both read "Neutrophil_...": a long
    name gets a line of its own above its bar, whole. With 47 classes a bar each would put the answer's bar
    far below the fold: the page shows the 8 likeliest, the answer first, and one line for the rest."""
    cells = ["Neutrophil_segmented", "Neutrophil_band", "Lymphocyte_small_mature", "Lymphocyte_large_granular",
             "Monocyte", "Eosinophil", "Basophil", "Erythroblast_orthochromatic", "Erythroblast_basophilic",
             "Platelet"]
    letters = [f"digit_{d}" for d in range(10)] + [f"upper_{chr(65 + i)}" for i in range(26)] + \
        [f"lower_{c}" for c in "abdefghnqrt"]
    upload = tmp_path / "seven.png"
    Image.fromarray(np.pad(np.full((12, 4), 255, np.uint8), 8)).save(upload)
    for classes, ranked in ((cells, False), (letters, True)):
        proc, url = serve(model_of_classes(small_model, tmp_path / f"m{len(classes)}.keras", classes))
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 800})
            page.goto(url)
            wait_until(page, f"window.digitpipe && window.digitpipe.classes.length === {len(classes)}")
            visible = page.locator(".bar:not([hidden])")
            assert visible.count() == (0 if ranked else len(classes))
            assert page.inner_text("#others") == (f"The 8 likeliest of the model's {len(classes)} classes show here."
                                                  if ranked else "")
            page.set_input_files("#upload", str(upload))
            wait_until(page, "document.getElementById('digit').textContent !== '?'")
            assert page.evaluate(NAMES_CUT) == 0
            labels = visible.evaluate_all("(rows) => rows.map((r) => r.dataset.label)")
            if ranked:
                probability = {q["label"]: q["p"] for q in page.evaluate("window.digitpipe.answer.probabilities")}
                assert labels[0] == page.inner_text("#digit").replace("\n", "") and len(labels) == 8
                assert labels == sorted(labels, key=lambda c: (c != labels[0], -probability[c], classes.index(c)))
                box = page.locator(".bar.best").bounding_box()
                assert box["y"] + box["height"] <= 800  # in view with no scrolling
                rest = sum(p for c, p in probability.items() if c not in labels)
                assert page.inner_text("#others") == f"39 other classes: {100 * rest:.1f}% together."
                page.click("#clear")
                assert visible.count() == 0 and page.inner_text("#others").startswith("The 8 likeliest")
            else:
                assert labels == classes and page.inner_text("#others") == ""
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
            page.close()
            sideways = browser.new_page(viewport={"width": 844, "height": 390})  # a phone held sideways
            sideways.goto(url)
            wait_until(sideways, f"window.digitpipe && window.digitpipe.classes.length === {len(classes)}")
            box = sideways.locator("#clear").bounding_box()  # a hint naming long classes does not push it out
            assert box["y"] + box["height"] <= 390
            sideways.close()
        finally:
            proc.terminate()
            proc.wait(10)

"""The running app clicked through in a real browser (Playwright driving Debian's Chromium, offline).

Generate a clip → run Motive → motion tab → attribution tab (tiles with scores, plots rendered, a
candidate played next to the query, the no-mask comparison) → curate (add, vote, download the CSV);
and a bad upload that shows a readable message while the app keeps serving. Screenshots of each step
go to the test's temporary folder (``benchmarks/screenshots.py`` makes the ones kept in the repo).
"""

from __future__ import annotations

import csv
import json
import math
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_app_api import build_tiny_world, free_port, make_bad_inputs  # noqa: E402

from benchmarks.screenshots import CHROMIUM, CHROMIUM_ARGS, click_pixel, dismiss_toasts  # noqa: E402

WAIT_MS = 90_000
REPO = Path(__file__).resolve().parents[1]
NUM_CLIPS = 16

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason=f"Debian's chromium is not installed at {CHROMIUM} "
                                                            "(apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    return build_tiny_world(tmp_path_factory.mktemp("browser_world"))


@pytest.fixture(scope="module")
def url(world):
    import app

    demo = app.build_app(world["model"], world["index"], world["nomask"], world["examples"], cache_dir=world["cache"])
    yield from serve(demo)


def serve(demo):
    """Launch ``demo`` on a free local port, yield its URL, close it afterwards (a fixture's body)."""
    import app

    _, local_url, _ = app.launch(demo, port=free_port(), host="127.0.0.1", prevent_thread_lock=True,
                                 show_error=True, quiet=True)
    try:
        yield local_url
    finally:
        demo.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser, url):
    """A fresh page (new session) on the app's start page."""
    tab = browser.new_page(viewport={"width": 1400, "height": 1000})
    tab.set_default_timeout(WAIT_MS)
    try:
        tab.goto(url)
        tab.wait_for_selector("#run-btn")
        yield tab
    finally:
        tab.close()


def table_rows(page, table: str):
    """A gr.DataFrame's grid; its aria-rowcount is the header plus the data rows."""
    return page.locator(f"{table} [role=grid]")


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def fill_once_shown(field, value: str) -> None:
    """Type into a component a tab or an accordion has just revealed. Gradio draws such a component only when
    it is first shown (more than a second later on a busy machine) and writes its stored value into it one
    animation frame after that: a value typed in between is overwritten. So: wait for it, then two frames."""
    field.wait_for(state="visible")
    field.page.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")
    field.fill(value)


def test_click_through_generate_attribute_curate_download(page, tmp_path):
    from playwright.sync_api import expect

    shots = tmp_path / "screenshots"
    expect(page.locator("#header")).to_contain_text(f"{NUM_CLIPS} clips")

    # 1 · query: generate a clip with the loaded model
    page.fill("#prompt textarea", "a red circle bouncing right on a plain background")
    steps = page.locator("#steps input[type=number]")
    steps.fill("2")
    steps.press("Enter")
    page.click("#generate-btn")
    expect(page.locator("#query-name textarea")).to_have_value(re.compile(r"^generated: a red circle"))
    expect(page.locator("#query-video video")).to_have_attribute("src", re.compile(r"\.mp4"))
    page.screenshot(path=shots / "1_query.png", full_page=True)

    # 2 · motion: overlays, per-frame plot with its three series, latent-grid image
    page.click("#run-btn")
    expect(page.get_by_role("tab", name="2 · Motion")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#motion-plot .js-plotly-plot .scatterlayer .trace")).to_have_count(3)
    expect(page.locator("#triptych video")).to_have_attribute("src", re.compile(r"\.mp4"))
    assert page.locator("#latent-mask img").evaluate("img => img.decode().then(() => img.naturalWidth)") > 0
    expect(page.locator("#motion-warnings")).to_contain_text(re.compile(r"Motion looks usable|Warning"))
    page.screenshot(path=shots / "2_motion.png", full_page=True)

    # 3 · attribution: five tiles per polarity with rank · score · id, both plots drawn, comparison playing
    open_tab(page, "3 · Attribution")
    expect(page.locator("#status")).to_contain_text("attributed against 16 clips")
    for gallery, sign in (("#pos-gallery", r"\+"), ("#neg-gallery", "−")):
        expect(page.locator(f"{gallery} img")).to_have_count(5)
        expect(page.locator(gallery)).to_contain_text(re.compile(sign + r"1 · [+-]\d\.\d{3} · \d{5}_\w+"))
    expect(page.locator("#score-hist .js-plotly-plot .barlayer .point").first).to_be_attached()
    expect(page.locator("#score-hist .js-plotly-plot .scatterlayer .point")).to_have_count(10)  # shown clips
    assert page.locator("#score-scatter .js-plotly-plot .scatterlayer .point").count() >= NUM_CLIPS
    expect(page.locator("#score-scatter .gtitle")).to_contain_text("Spearman")
    expect(page.locator("#compare-video video")).to_have_attribute("src", re.compile(r"\.mp4"))
    expect(page.locator("#candidate-md")).to_contain_text(re.compile(r"\+1 · \d{5}_\w+ — influence [+-]\d"))
    page.screenshot(path=shots / "3_attribution.png", full_page=True)

    page.locator("#neg-gallery img").first.click()  # play the most negative clip next to the query
    expect(page.locator("#candidate-md")).to_contain_text(re.compile(r"−1 · \d{5}_\w+ — influence [+-]\d"))
    expect(page.locator("#compare-video video")).to_have_attribute("src", re.compile(r"\.mp4"))

    page.locator("#nomask-switch input").check()  # the mask vs no-mask comparison
    expect(page.locator("#nomask-md")).to_contain_text("Jaccard")
    expect(table_rows(page, "#nomask-table")).to_have_attribute("aria-rowcount", "6")  # header + top-5
    page.screenshot(path=shots / "4_nomask.png", full_page=True)

    # 4 · curate: add the query, vote, download the CSV
    open_tab(page, "4 · Curate")
    page.click("#add-btn")
    expect(table_rows(page, "#query-table")).to_have_attribute("aria-rowcount", "2")
    page.click("#vote-btn")
    expect(table_rows(page, "#selection-table")).to_have_attribute("aria-rowcount",
                                                                 str(1 + math.ceil(0.1 * NUM_CLIPS)))
    expect(page.locator("#vote-md")).to_contain_text(f"Kept {math.ceil(0.1 * NUM_CLIPS)} of {NUM_CLIPS} clips")
    expect(page.locator("#overlap-plot .js-plotly-plot .heatmaplayer, #overlap-plot .js-plotly-plot image")
           .first).to_be_attached()
    link = page.locator("#csv-file a[href*='.csv']").first
    expect(link).to_be_attached()
    csv_text = page.request.get(link.get_attribute("href")).text()
    assert csv_text.startswith("# model: ") and "# percentile: 90" in csv_text
    csv_text = "".join(line for line in csv_text.splitlines(keepends=True) if not line.startswith("#"))
    assert csv_text.startswith("rank,id,file,caption,labels,votes,mean_score,score_")
    assert len(csv_text.strip().splitlines()) == 1 + math.ceil(0.1 * NUM_CLIPS)
    page.screenshot(path=shots / "5_curate.png", full_page=True)


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory) -> dict[str, Path]:
    return make_bad_inputs(tmp_path_factory.mktemp("browser_bad_inputs"))


def upload(page, path: Path) -> None:
    """Replace the query clip by uploading ``path`` through the page's file input."""
    page.get_by_role("tab", name="1 · Query").click()
    clear = page.locator("#query-video button[aria-label='Clear']")
    if clear.count():  # dispatched, not clicked: a playing video may lie over the button and take the click
        clear.first.dispatch_event("click")
    page.set_input_files("#query-video input[type=file]", str(path))


@pytest.mark.parametrize("case, message", [("text", "is not a video ffmpeg can read"),
                                           ("empty", "is empty (0 bytes)"),
                                           ("one_frame", "has only 1 frame"),
                                           ("ten_minutes", "over the 60 s limit")])
def test_bad_upload_shows_a_message_and_the_app_keeps_serving(page, bad_inputs, case, message, tmp_path):
    from playwright.sync_api import expect

    upload(page, bad_inputs[case])
    page.click("#run-btn")
    expect(page.locator(".toast-body.error", has_text=message).first).to_be_visible()
    assert "Traceback" not in page.content()
    page.screenshot(path=tmp_path / f"error_{case}.png")
    dismiss_toasts(page)

    page.locator("#query-video button[aria-label='Clear']").first.dispatch_event("click")
    page.locator("#examples tbody tr").first.click()  # a good example right after: still served
    expect(page.locator("#query-video video")).to_have_attribute("src", re.compile(r"\.mp4"))
    page.click("#run-btn")
    expect(page.get_by_role("tab", name="2 · Motion")).to_have_attribute("aria-selected", "true")
    open_tab(page, "3 · Attribution")
    expect(page.locator("#pos-gallery img")).to_have_count(5)
    expect(page.locator("#status")).to_contain_text("attributed against 16 clips")


def test_static_and_4k_uploads_give_a_warning_or_a_result(page, bad_inputs):
    from playwright.sync_api import expect

    upload(page, bad_inputs["static"])
    page.click("#run-btn")
    expect(page.locator("#motion-warnings")).to_contain_text("Nearly static")
    expect(page.locator(".toast-body.error", has_text="no motion at all").first).to_be_visible()
    dismiss_toasts(page)

    upload(page, bad_inputs["4k"])
    expect(page.locator("#query-name textarea")).to_have_value("uhd_4k")  # named after the uploaded file
    page.click("#run-btn")
    expect(page.locator("#status")).to_contain_text("uhd_4k: attributed against 16 clips")
    open_tab(page, "3 · Attribution")
    expect(page.locator("#pos-gallery img")).to_have_count(5)


def test_a_new_upload_clears_the_previous_prompt(page, bad_inputs):
    """Generate with a prompt, then upload another clip: the prompt box is emptied, and the result says
    that no prompt was used (an old prompt would silently become the new clip's caption)."""
    from playwright.sync_api import expect

    page.fill("#prompt textarea", "a red circle bouncing right on a plain background")
    steps = page.locator("#steps input[type=number]")
    steps.fill("2")
    steps.press("Enter")
    page.click("#generate-btn")
    expect(page.locator("#query-video video")).to_have_attribute("src", re.compile(r"\.mp4"))
    page.fill("#window-start textarea", "0.5")
    upload(page, bad_inputs["4k"])
    expect(page.locator("#query-name textarea")).to_have_value("uhd_4k")
    expect(page.locator("#prompt textarea")).to_have_value("")
    expect(page.locator("#window-start textarea")).to_have_value("")  # the old window start goes too
    page.click("#run-btn")
    expect(page.locator("#status")).to_contain_text("uhd_4k: attributed against 16 clips")
    open_tab(page, "3 · Attribution")
    expect(page.locator("#attr-summary")).to_contain_text("Prompt used: no prompt")


def test_a_review_link_reopens_the_review_and_its_report_opens_without_the_app(page, browser, tmp_path):
    from playwright.sync_api import expect

    page.locator("#examples tbody tr").first.click()
    expect(page.locator("#query-video video")).to_have_attribute("src", re.compile(r"\.mp4"))
    page.click("#run-btn")
    expect(page.locator("#status")).to_contain_text("attributed against 16 clips")
    open_tab(page, "4 · Curate")
    page.click("#add-btn")
    expect(table_rows(page, "#query-table")).to_have_attribute("aria-rowcount", "2")
    page.fill("#notes textarea", "keep the swings")
    page.click("#save-btn")
    link = page.locator("#review-md a[href*='?review=']").first
    expect(link).to_be_attached()

    fresh = browser.new_page(viewport={"width": 1400, "height": 1000})  # a reload / a colleague
    try:
        fresh.goto(link.get_attribute("href"))
        open_tab(fresh, "4 · Curate")
        expect(table_rows(fresh, "#query-table")).to_have_attribute("aria-rowcount", "2")
        expect(fresh.locator("#notes textarea")).to_have_value("keep the swings")
        expect(fresh.locator("#query-video video")).to_have_attribute("src", re.compile(r"\.mp4"))
    finally:
        fresh.close()

    page.click("#report-btn")
    report = page.locator("#report-file a[href*='.html']").first
    expect(report).to_be_attached()
    saved = tmp_path / "report.html"
    saved.write_bytes(page.request.get(report.get_attribute("href")).body())
    offline = browser.new_page()
    try:
        offline.goto(saved.as_uri())  # no server involved: everything is embedded
        expect(offline.locator("video")).to_have_count(1)
        assert offline.locator("video").evaluate("v => v.src.startsWith('data:video/mp4')")
        widths = offline.locator("img").evaluate_all("imgs => Promise.all(imgs.map(i => i.decode().then(() => "
                                                     "i.naturalWidth)))")
        assert len(widths) == 10 and min(widths) > 0
        expect(offline.locator("body")).to_contain_text("keep the swings")
    finally:
        offline.close()


def test_small_frictions_messages_progress_layout_and_numbers(page):
    """'Add' before a run says what to do; progress shows under the Run button; the no-mask result sits
    next to its switch; plots fit their boxes; table scores have four decimals."""
    from playwright.sync_api import expect

    open_tab(page, "4 · Curate")
    page.click("#add-btn")
    expect(page.locator(".toast-body.error", has_text="Attribute a query first").first).to_be_visible()
    dismiss_toasts(page)

    open_tab(page, "1 · Query")
    page.locator("#examples tbody tr").first.click()
    expect(page.locator("#query-video video")).to_have_attribute("src", re.compile(r"\.mp4"))
    page.click("#run-btn")
    expect(page.locator("#run-progress .wrap, #run-progress .progress-text").first).to_be_attached()
    expect(page.locator("#status")).to_contain_text("attributed against 16 clips")

    open_tab(page, "3 · Attribution")
    expect(page.locator("#pos-gallery .caption-label")).to_have_count(5)
    captions = page.locator("#pos-gallery .caption-label, #neg-gallery .caption-label").evaluate_all(
        "els => els.map(e => [e.scrollWidth <= e.clientWidth, e.innerText])")
    assert all(fits for fits, _ in captions), captions  # nothing cut off with an ellipsis
    assert all(re.fullmatch(r"[+−]\d · [+-]\d\.\d{3} · \d{5}_\w+", text) for _, text in captions), captions
    page.locator("#nomask-switch input").check()
    expect(page.locator("#nomask-md")).to_contain_text("Jaccard")
    switch, result = page.locator("#nomask-switch").bounding_box(), page.locator("#nomask-md").bounding_box()
    assert 0 <= result["y"] - (switch["y"] + switch["height"]) < 150  # right under its switch
    for plot in ("#score-hist", "#score-scatter"):
        box = page.locator(plot).bounding_box()
        svg = page.locator(f"{plot} .main-svg").first.bounding_box()
        assert svg["x"] >= box["x"] - 1 and svg["x"] + svg["width"] <= box["x"] + box["width"] + 1, plot
    cells = page.locator("#nomask-table [role=gridcell]").all_inner_texts()
    scores = [c for c in cells if re.fullmatch(r"[+-]\d\.\d+", c.strip())]
    assert scores and all(re.fullmatch(r"[+-]\d\.\d{4}", c.strip()) for c in scores)


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory) -> Path:
    """20 s at 8 fps: a square moves during the first 2 s only."""
    import numpy as np

    from motive_core.video import write_mp4

    frames = np.full((160, 64, 64, 3), 30, np.uint8)
    for t in range(160):
        x = 4 + 3 * min(t, 13)
        frames[t, 24:40, x:x + 16] = (240, 90, 40)
    return write_mp4(frames, tmp_path_factory.mktemp("long") / "moves_first.mp4", 8.0)


def test_window_limits_escaping_and_private_files_in_the_page(page, world, long_clip):
    """A long upload is attributed on its most moving window (shown on the Motion tab); the upload limit is
    on the upload box; a query name with markup stays text; index files are not served to the page."""
    from playwright.sync_api import expect

    expect(page.locator("#query-video")).to_contain_text("up to 200 MB")
    upload(page, long_clip)
    expect(page.locator("#query-name textarea")).to_have_value("moves_first")
    name = '<img src=x id=injected onerror="document.title=1">'
    page.fill("#query-name textarea", name)
    page.click("#run-btn")
    expect(page.locator("#motion-warnings")).to_contain_text("the window with the most motion")
    expect(page.locator("#motion-warnings")).not_to_contain_text("Nearly static")
    expect(page.locator("#status")).to_contain_text("attributed against 16 clips")
    expect(page.locator("#status")).to_contain_text(name)  # shown as the text it is
    assert page.locator("#injected").count() == 0 and page.title() != "1"
    for private in ("vectors.npy", "clips.jsonl", "config.json"):
        reply = page.request.get(f"{page.url.split('?')[0]}gradio_api/file={world['index'] / private}")
        assert reply.status == 403, private


def attribute_the_selection(page, described: str) -> None:
    """Attribute the selection set on the Motion tab: the players change to W ⊙ S, and the Motion tab and then
    the Attribution tab describe the selection."""
    from playwright.sync_api import expect

    before = page.locator("#triptych video").get_attribute("src")
    page.click("#selection-btn")
    expect(page.locator("#motion-warnings")).to_contain_text(described)
    assert page.locator("#triptych video").get_attribute("src") != before  # the players show W ⊙ S now
    open_tab(page, "3 · Attribution")
    expect(page.locator("#attr-summary")).to_contain_text(described)


def test_a_box_and_frame_range_typed_on_the_motion_tab_reach_the_result(page, long_clip):
    """Type a box and a frame range under the players, attribute the selection: the players are redrawn for it,
    the summary names it and the result JSON records it."""
    from playwright.sync_api import expect

    upload(page, long_clip)
    page.click("#run-btn")
    expect(page.locator("#status")).to_contain_text("attributed against 16 clips")
    for field, value in (("#box-x0", "0"), ("#box-y0", "16"), ("#box-x1", "64"), ("#box-y1", "48"),
                         ("#frames-from", "0"), ("#frames-to", "4")):
        fill_once_shown(page.locator(f"{field} input"), value)  # the run has just switched to their tab
    attribute_the_selection(page, "selection box 0,16,64,48, frames 0:4")
    page.get_by_text("full result (JSON)").click()
    expect(page.locator("#attr-result")).to_contain_text("box 0,16,64,48, frames 0:4")
    expect(page.locator("#attr-result")).to_contain_text("motion_kept")

    open_tab(page, "2 · Motion")
    page.click("#clear-selection-btn")  # back to the whole window
    expect(page.locator("#box-x0 input")).to_have_value("")


def test_a_box_drawn_by_two_clicks_and_a_range_set_by_sliders_reach_the_ranking(page, long_clip):
    """Two clicks on the frame fill x0, y0, x1, y1 (pixels of the window as read: this 64-px clip is seen by the
    32-px model at half size) and, with "follows the object" ticked, the frame it was drawn on; the range sliders
    fill the frame numbers and follow typed ones; the players and the ranking are then for that selection."""
    from playwright.sync_api import expect

    upload(page, long_clip)
    page.click("#run-btn")
    expect(page.locator("#status")).to_contain_text("attributed against 16 clips")
    open_tab(page, "3 · Attribution")
    whole = page.locator("#pos-gallery .caption-label").all_inner_texts()
    open_tab(page, "2 · Motion")
    picker = "#frame-picker img"
    expect(page.locator("#frame-picker")).to_contain_text("frame 0 of the window")
    expect(page.locator(picker)).to_have_attribute("src", re.compile(r"picker_0_"))
    assert page.locator(picker).evaluate("img => img.decode().then(() => img.naturalWidth)") == 320  # 32 px × 10

    plain = page.locator(picker).get_attribute("src")
    page.locator("#follow input").check()
    click_pixel(page, picker, 25, 105)  # model pixel (2, 10) …
    expect(page.locator(picker)).not_to_have_attribute("src", plain)  # the corner is marked
    first_corner = page.locator(picker).get_attribute("src")
    click_pixel(page, picker, 295, 215)  # … to model pixel (29, 21): the box covers model pixels 2-29 × 10-21
    expect(page.locator(picker)).not_to_have_attribute("src", first_corner)
    for field, value in (("x0", "4"), ("y0", "20"), ("x1", "60"), ("y1", "44"), ("frame", "0")):  # as read
        expect(page.locator(f"#box-{field} input")).to_have_value(value)

    for slider, value in (("#range-from", "2"), ("#range-to", "6")):
        number = page.locator(f"{slider} input[type=number]")
        number.fill(value)
        number.press("Enter")
    expect(page.locator("#frames-from input")).to_have_value("2")
    expect(page.locator("#frames-to input")).to_have_value("6")
    page.fill("#frames-from input", "1")  # a typed number moves its slider
    page.locator("#frames-from input").press("Tab")
    expect(page.locator("#range-from input[type=number]")).to_have_value("1")

    attribute_the_selection(page, "selection box 4,20,60,44@0, frames 1:6")
    expect(page.locator("#pos-gallery .caption-label")).to_have_count(5)
    assert page.locator("#pos-gallery .caption-label").all_inner_texts() != whole  # scores for the selection


def test_the_when_view_ranks_each_stretch_side_by_side(page):
    """The "when" view splits the attributed window into N stretches and shows each one's top clips in a column."""
    from playwright.sync_api import expect

    page.locator("#examples tbody tr").first.click()
    expect(page.locator("#query-video video")).to_have_attribute("src", re.compile(r"\.mp4"))
    page.click("#run-btn")
    expect(page.locator("#status")).to_contain_text("attributed against 16 clips")
    open_tab(page, "3 · Attribution")
    page.get_by_text("When: which training clips shaped each stretch").click()
    count = page.locator("#when-count input[type=number]")
    fill_once_shown(count, "2")
    count.press("Enter")
    expect(page.locator("#when-count input[type=range]")).to_have_value("2")  # the slider holds it before the click
    page.click("#when-btn")
    expect(page.locator("#when-table")).to_contain_text("2 · frames")
    headers = [t.strip() for t in page.locator("#when-table [role=columnheader]").all_inner_texts() if t.strip()]
    spans = [re.fullmatch(r"(\d) · frames (\d+)–(\d+) · \d\.\d\d–\d\.\d\d s", h) for h in headers]
    assert len(headers) == 2 and all(spans), headers
    (_, first, end), (_, start, _) = (span.groups() for span in spans)
    assert first == "0" and int(start) == int(end) + 1  # consecutive stretches from the window's first frame
    cells = [c.strip() for c in page.locator("#when-table [role=gridcell]").all_inner_texts() if c.strip()]
    assert len(cells) == 2 * 5 and all(re.fullmatch(r"\+\d · [+-]\d\.\d{3} · \d{5}_\w+", c) for c in cells), cells


@pytest.fixture(scope="module")
def two_worlds_url(world, tmp_path_factory):
    """The app with a second, smaller world a page can switch to (as the artifact world is offered)."""
    import app

    other = build_tiny_world(tmp_path_factory.mktemp("second_world"), num_clips=12)
    demo = app.build_app(world["model"], world["index"], world["nomask"], world["examples"], cache_dir=world["cache"],
                         more_worlds={"artifact": (other["model"], other["index"], other["nomask"],
                                                   other["examples"])})
    yield from serve(demo)


def test_a_page_switches_world_without_a_restart_and_other_pages_keep_theirs(browser, two_worlds_url):
    """The world menu swaps model, indexes and examples for one page; another page stays in its world."""
    from playwright.sync_api import expect

    pages = [browser.new_page(viewport={"width": 1400, "height": 1000}) for _ in range(2)]
    try:
        for tab in pages:
            tab.set_default_timeout(WAIT_MS)
            tab.goto(two_worlds_url)
            expect(tab.locator("#header")).to_contain_text(f"{NUM_CLIPS} clips")
        switched, other = pages
        switched.locator("#world input").click()
        switched.get_by_role("option", name="artifact (planted jitter/stutter)").click()
        expect(switched.locator("#header")).to_contain_text("(12 clips")
        expect(switched.locator("#status")).to_contain_text("12 training clips")
        for tab, clips in ((switched, 12), (other, NUM_CLIPS)):  # each page ranks against its own world's index
            tab.locator("#examples-artifact tbody tr" if tab is switched else "#examples tbody tr").first.click()
            tab.click("#run-btn")
            expect(tab.locator("#status")).to_contain_text(f"attributed against {clips} clips")
        expect(other.locator("#header")).to_contain_text(f"({NUM_CLIPS} clips")
    finally:
        for tab in pages:
            tab.close()


# ------------------------------------------------------------------------ the shipped artifact story


ARTIFACT_ROOT = REPO / "precomputed" / "artifact"


@pytest.fixture(scope="module")
def shipped_url(tmp_path_factory):
    """The app as ``python app.py`` starts it: the committed artifact world first, the clean world in its menu."""
    import app

    args = app.parse_args(["--cache-dir", str(tmp_path_factory.mktemp("shipped_cache"))])
    demo = app.build_app(args.model, args.index, args.nomask_index, args.examples, args.cache_dir,
                         max_seconds=args.max_seconds, world=args.world, more_worlds=app._other_worlds(args))
    yield from serve(demo)


def _listed_ids(text: str) -> list[str]:
    """The clip ids of a downloaded CSV list (its '# ' settings lines skipped)."""
    rows = csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))
    return [row["id"] for row in rows]


def test_the_artifact_story_from_a_jittering_generation_to_a_removal_and_a_keep_list(browser, shipped_url, tmp_path):
    """On the committed artifact world: the app opens on it; its first example (a generation of the artifact
    model that jitters) is read as jitter on the Motion tab; the top 10 hold jittering bounces, each tile flagged;
    the reviewer lists the query, votes, and downloads a removal list and a keep list that split the pool.

    What the committed world gives (the library, no prompt): planted jittering bounces at +6, +7 and +10 of
    the top 10, no stuttering swing; the removal list (top 10 %, 30 clips) holds 12 of the 15 jittering
    bounces."""
    from playwright.sync_api import expect

    pool = [json.loads(line) for line in (ARTIFACT_ROOT / "index-motion" / "clips.jsonl").read_text().splitlines()]
    planted = {clip["id"]: clip["labels"]["artifact"] for clip in pool if clip["labels"]["artifact"] != "none"}
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(WAIT_MS)
    try:
        page.goto(shipped_url)
        expect(page.locator("#world input")).to_have_value("artifact (planted jitter/stutter)")
        expect(page.locator("#header")).to_contain_text(f"({len(pool)} clips")

        page.locator("#examples tbody tr").first.click()  # the generated jittering bounce
        expect(page.locator("#query-video video")).to_have_attribute("src", re.compile(r"generated_bounce_jitter"))
        page.click("#run-btn")

        expect(page.get_by_role("tab", name="2 · Motion")).to_have_attribute("aria-selected", "true")
        expect(page.locator("#motion-plot .js-plotly-plot .scatterlayer .trace")).to_have_count(3)
        expect(page.locator("#triptych video")).to_have_attribute("src", re.compile(r"\.mp4"))
        expect(page.locator("#planted-md")).to_contain_text("the query reads as jitter")
        expect(page.locator("#planted-plot .js-plotly-plot .scatterlayer .trace")).to_have_count(2)
        page.screenshot(path=tmp_path / "artifact_motion.png", full_page=True)

        open_tab(page, "3 · Attribution")
        expect(page.locator("#status")).to_contain_text(f"attributed against {len(pool)} clips")
        expect(page.locator("#pos-gallery .caption-label")).to_have_count(10)
        captions = page.locator("#pos-gallery .caption-label").all_inner_texts()
        assert all(re.search(r" · (planted: jitter|not planted)$", text) for text in captions), captions
        assert sum("planted: jitter" in text for text in captions) >= 2, captions
        expect(page.locator("#attr-summary")).to_contain_text(re.compile(r"\d+ of the top 10 are planted \(jitter"))
        page.screenshot(path=tmp_path / "artifact_attribution.png", full_page=True)

        open_tab(page, "4 · Curate")
        page.click("#add-btn")
        expect(table_rows(page, "#query-table")).to_have_attribute("aria-rowcount", "2")
        page.click("#vote-btn")
        kept = math.ceil(0.1 * len(pool))
        expect(page.locator("#vote-md")).to_contain_text(f"Kept {kept} of {len(pool)} clips")
        expect(page.locator("#selection-table")).to_contain_text("bounce · planted: jitter")
        page.screenshot(path=tmp_path / "artifact_curate.png", full_page=True)
        lists = {}
        for name, element, extension in (("removal", "#csv-file", "csv"), ("removal_jsonl", "#jsonl-file", "jsonl"),
                                         ("keep", "#others-file", "csv")):
            link = page.locator(f"{element} a[href*='.{extension}']").first
            expect(link).to_be_attached()
            lists[name] = page.request.get(link.get_attribute("href")).text()
    finally:
        page.close()
    removal, keep = _listed_ids(lists["removal"]), _listed_ids(lists["keep"])
    settings, *rows = [json.loads(line) for line in lists["removal_jsonl"].splitlines()]
    assert "motive_selection_settings" in settings and [row["id"] for row in rows] == removal
    assert len(removal) == kept and sorted(removal + keep) == sorted(clip["id"] for clip in pool)
    removed = [planted[i] for i in removal if i in planted]
    assert removed.count("jitter") >= 10, removed  # the removal list names most jittering clips (12 of 15) …
    assert {i for i in keep if i in planted} == set(planted) - set(removal)  # … the keep list every other planted one

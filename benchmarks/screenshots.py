"""Screenshots of every step of Motive Studio, taken in Debian's Chromium through Playwright (offline).

    python -m benchmarks.screenshots                       # the precomputed demo world
    python -m benchmarks.screenshots --root R --assets A   # another world (model, index-motion, index-nomask)
    python -m benchmarks.screenshots --tiny                # build a tiny world first (when precomputed/ is absent)
    python -m benchmarks.screenshots --story region        # the artifact world: box, frame range, "when" view

Starts the app in-process on a free port, clicks through query → generate → motion → attribution →
candidate → no-mask comparison → curation (several queries, vote, downloads) → review (save, link,
report) → a bad upload, and saves
PNGs plus ``screenshots.json`` (which world, when, seconds per step) under ``assets/screenshots/``. The
region story draws a box by two clicks on the artifact world's first example, sets a frame range, ranks for
the selection and opens the "when" view (``region_*.png``, ``screenshots-region.json``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import socket
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common.results import REPO, repo_relative

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WAIT_MS = 180_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def world_is_complete(root: Path, assets: Path) -> bool:
    index = root / "index-motion" / "config.json"
    return ((root / "model" / "motive_demo.json").is_file() or (root / "model" / "model_index.json").is_file()) \
        and index.is_file() and json.loads(index.read_text()).get("complete", False) \
        and (assets / "examples" / "examples.json").is_file()


def build_tiny(folder: Path) -> tuple[Path, Path]:
    """A 40-clip world with a small model (a minute or two on CPU); only for when precomputed/ is missing."""
    from motive_core.demo.train import TrainConfig
    from motive_core.demo.world import DemoRecipe, build_demo

    recipe = DemoRecipe(num_clips=40, train=TrainConfig(steps=20, batch_size=8, warmup=2), generate_steps=4)
    build_demo(folder / "pre", folder / "assets", recipe)
    return folder / "pre", folder / "assets"


class Shots:
    """Saves numbered screenshots and times each step."""

    def __init__(self, page, out: Path, prefix: str = ""):
        self.page, self.out, self.prefix, self.steps = page, out, prefix, []
        self.start = time.perf_counter()
        out.mkdir(parents=True, exist_ok=True)

    def take(self, name: str, what: str, locator=None, keep_toasts: bool = False, clip: dict | None = None) -> None:
        """One PNG: of ``locator``, of the page area ``clip`` (page coordinates), or of the whole page."""
        if not keep_toasts:
            dismiss_toasts(self.page)
        path = self.out / f"{self.prefix}{len(self.steps) + 1:02d}_{name}.png"
        time.sleep(1.0)  # let videos show a frame and plots finish their transition
        if locator is not None:
            locator.screenshot(path=path)
        else:
            self.page.screenshot(path=path, full_page=True, clip=clip)
        elapsed = time.perf_counter() - self.start
        self.steps.append({"file": path.name, "shows": what, "seconds": round(elapsed, 1)})
        print(f"[shots] {path.name}: {what} ({elapsed:.1f} s)", flush=True)
        self.start = time.perf_counter()


def click_pixel(page, image: str, x: float, y: float) -> None:
    """Click natural pixel (x, y) of an image shown scaled to fit its box (mapped back as gradio maps a click)."""
    target = page.locator(image)
    target.scroll_into_view_if_needed()
    box = target.bounding_box()
    width, height = target.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    ratio = min(box["width"] / width, box["height"] / height, 1.0)
    left = box["x"] + (box["width"] - width * ratio) / 2
    top = box["y"] + (box["height"] - height * ratio) / 2
    page.mouse.click(left + x * ratio, top + y * ratio)


def page_area(page, *selectors: str) -> dict:
    """The page-coordinate rectangle spanning the elements ``selectors`` (for a screenshot of one area)."""
    rects = [page.locator(s).first.evaluate("e => { const r = e.getBoundingClientRect(); "
                                            "return [r.left + scrollX, r.top + scrollY, r.right + scrollX, "
                                            "r.bottom + scrollY]; }") for s in selectors]
    left, top = min(r[0] for r in rects), min(r[1] for r in rects)
    return {"x": left, "y": top, "width": max(r[2] for r in rects) - left, "height": max(r[3] for r in rects) - top}


def dismiss_toasts(page) -> None:
    for button in page.locator(".toast-close").all():
        try:
            button.click(timeout=1000)
        except Exception:  # noqa: BLE001 - a toast may close itself meanwhile
            pass


def open_curate(page) -> None:
    """Show tab 4 (clicked again if a late tab switch from the run replaced it)."""
    add = page.locator("#add-btn")
    for _ in range(5):
        page.get_by_role("tab", name="4 · Curate").click()
        try:
            add.wait_for(state="visible", timeout=5000)
            return
        except Exception:  # noqa: BLE001 - try the tab again
            time.sleep(1.0)
    add.wait_for(state="visible")


def run_query(page, expect, row: int) -> str:
    """Pick example ``row``, run Motive, wait until it is attributed; returns the query name."""
    page.get_by_role("tab", name="1 · Query").click()
    name_box = page.locator("#query-name textarea")
    previous = name_box.input_value()
    page.locator("#examples tbody tr").nth(row).click()
    expect(name_box).not_to_have_value(previous)  # the example's name, not the last query's
    name = name_box.input_value()
    page.click("#run-btn")
    expect(page.locator("#status")).to_contain_text(f"{name}: attributed against")
    return name


@contextlib.contextmanager
def opened_app(url: str):
    """A chromium page on the app, loaded and ready, and playwright's ``expect`` with this script's timeout."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(WAIT_MS)
            page.goto(url)
            page.wait_for_selector("#run-btn")
            yield page, expect
        finally:
            browser.close()


def click_through(url: str, out: Path, generate_steps: int) -> list[dict]:
    with opened_app(url) as (page, expect):
        shots = Shots(page, out)

        page.locator("#examples tbody tr").nth(1).click()
        expect(page.locator("#query-video video")).to_have_attribute("src", re.compile(r"\.mp4"))
        shots.take("query", "tab 1: an example query picked (a held-out look), prompt and name filled")

        page.click("#run-btn")
        expect(page.locator("#motion-plot .js-plotly-plot")).to_be_attached()
        expect(page.locator("#status")).to_contain_text("attributed against")
        page.get_by_role("tab", name="2 · Motion").click()
        shots.take("motion", "tab 2: query | grey-fade mask | heat-map, magnitude per frame, latent-grid mask")

        page.get_by_role("tab", name="3 · Attribution").click()
        expect(page.locator("#pos-gallery img").first).to_be_visible()
        shots.take("attribution", "tab 3: top positive / negative clips, comparison player, histogram, scatter")

        page.locator("#neg-gallery img").first.click()
        expect(page.locator("#candidate-md")).to_contain_text("−1 ·")
        shots.take("candidate", "tab 3: the most negative clip playing next to the query, both with masks",
                   page.locator("#compare-row"))

        page.locator("#nomask-switch input").check()
        expect(page.locator("#nomask-md")).to_contain_text("Jaccard")
        shots.take("nomask", "tab 3: Motive (mask) vs no-mask rankings and their overlap")

        page.get_by_role("tab", name="4 · Curate").click()
        page.click("#add-btn")
        page.get_by_role("tab", name="1 · Query").click()
        page.fill("#prompt textarea", "a red circle bouncing right on a plain background")
        steps = page.locator("#steps input[type=number]")
        steps.fill(str(generate_steps))
        steps.press("Enter")
        page.click("#generate-btn")
        expect(page.locator("#query-name textarea")).to_have_value(
            "generated: a red circle bouncing right on a plain background (seed 0)")
        shots.take("generate", f"tab 1: a clip generated by the loaded model ({generate_steps} steps)")

        page.click("#run-btn")
        expect(page.locator("#status")).to_contain_text("generated: a red circle bouncing right on a plain background "
                                                        "(seed 0): attributed against")
        open_curate(page)
        page.click("#add-btn")
        for row in (0, 2):
            run_query(page, expect, row)
            open_curate(page)
            page.click("#add-btn")
        expect(page.locator("#query-table [role=grid]")).to_have_attribute("aria-rowcount", "5")
        page.click("#vote-btn")
        expect(page.locator("#csv-file a[href*='.csv']").first).to_be_attached()
        shots.take("curate", "tab 4: four queries, majority vote, per-query overlap, CSV / JSONL downloads")

        page.fill("#notes textarea", "bounce and spin share their top clips; check the camera pans")
        page.click("#save-btn")
        expect(page.locator("#review-md a[href*='?review=']").first).to_be_attached()
        page.click("#report-btn")
        expect(page.locator("#report-file a[href*='.html']").first).to_be_attached()
        shots.take("review", "tab 4: the review saved as a file and a link, and its self-contained HTML report")

        page.get_by_role("tab", name="1 · Query").click()
        page.locator("#query-video button[aria-label='Clear']").first.click()
        fake = Path(tempfile.mkdtemp()) / "notes.mp4"
        fake.write_text("meeting notes, not a video\n" * 20)
        page.set_input_files("#query-video input[type=file]", str(fake))
        page.click("#run-btn")
        expect(page.locator(".toast-body.error").first).to_contain_text("is not a video")
        shots.take("bad_input", "a text file named .mp4: a readable message, the app keeps serving",
                   keep_toasts=True)
        return shots.steps


def region_story(url: str, out: Path) -> list[dict]:
    """The artifact world's first example (a jittering bounce): a box drawn by two clicks on its frame, a frame
    range set with the sliders, the players and the ranking for that selection, then the "when" view."""
    with opened_app(url) as (page, expect):
        shots = Shots(page, out, prefix="region_")
        run_query(page, expect, 0)
        page.get_by_role("tab", name="2 · Motion").click()
        picker = page.locator("#frame-picker img")
        expect(picker).to_have_attribute("src", re.compile(r"picker_"))
        for x, y in ((45, 75), (235, 245)):  # corners of a box around the bounce's path (model pixels ×10)
            before = picker.get_attribute("src")
            click_pixel(page, "#frame-picker img", x, y)
            expect(picker).not_to_have_attribute("src", before)
        expect(page.locator("#box-x1 input")).not_to_have_value("")
        for slider, value in (("#range-from", "3"), ("#range-to", "13")):
            number = page.locator(f"{slider} input[type=number]")
            number.fill(value)
            number.press("Enter")
        expect(page.locator("#frames-to input")).to_have_value("13")
        page.click("#selection-btn")
        expect(page.locator("#motion-warnings")).to_contain_text("selection box")
        expect(page.locator("#status")).to_contain_text("attributed against")
        expect(page.locator("#frame-picker")).to_contain_text("frame 3 of the window")
        shots.take("selection", "tab 2: a box drawn by two clicks on frame 3 and frames 3-12 set with the "
                   "sliders", page.locator("#selection-box"))
        page.locator("#triptych video").evaluate(  # held on frame 11, inside the range
            "v => new Promise(done => { v.pause(); v.onseeked = () => done(); v.currentTime = 11.5 / 8; })")
        shots.take("players", "tab 2: the players for that selection, held on frame 11: the box outlined, grey-fade "
                   "and heat-map of W ⊙ S (frames outside the range play dimmed)",
                   clip=page_area(page, "#motion-warnings", "#triptych"))
        page.get_by_role("tab", name="3 · Attribution").click()
        expect(page.locator("#attr-summary")).to_contain_text("selection box")
        page.get_by_text("When: which training clips shaped each stretch").click()
        page.click("#when-btn")
        expect(page.locator("#when-table")).to_contain_text("3 · frames")
        shots.take("when", "tab 3: the 'when' view, the top clips of three consecutive stretches side by side",
                   page.locator("#when-box"))
        return shots.steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(REPO / "precomputed"), help="world with model/ and index folders")
    parser.add_argument("--assets", default=str(REPO / "assets"), help="folder holding examples/")
    parser.add_argument("--out", default=str(REPO / "assets" / "screenshots"))
    parser.add_argument("--tiny", action="store_true", help="build a tiny world in a temp folder and use it")
    parser.add_argument("--generate-steps", type=int, default=10)
    parser.add_argument("--story", choices=("full", "region"), default="full",
                        help="full: every step on --root; region: box, frame range and 'when' view on the artifact "
                             "world")
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).is_file():
        print(f"screenshots: Debian's chromium is not at {CHROMIUM} (apt-get install chromium)", file=sys.stderr)
        return 2
    if args.story == "region":
        return shoot_region(Path(args.out))
    root, assets = Path(args.root), Path(args.assets)
    if args.tiny:
        root, assets = build_tiny(Path(tempfile.mkdtemp(prefix="motive-tiny-")))
    elif not world_is_complete(root, assets):
        print(f"screenshots: no complete world at {root} (+ {assets}/examples); pass --tiny or build it with "
              "`python -m motive_core demo`", file=sys.stderr)
        return 2

    import app

    start = time.perf_counter()
    demo = app.build_app(root / "model", root / "index-motion", root / "index-nomask", assets / "examples",
                         cache_dir=Path(tempfile.mkdtemp(prefix="motive-shots-cache-")))
    startup = time.perf_counter() - start
    _, url, _ = app.launch(demo, port=free_port(), host="127.0.0.1", prevent_thread_lock=True, quiet=True)
    try:
        steps = click_through(url, Path(args.out), args.generate_steps)
    finally:
        demo.close()
    engine = demo.motive_engine
    record = {"world": repo_relative(root), "tiny_world": bool(args.tiny), "clips": len(engine.clips),
              "model": engine.attributor.index.config.get("model"), "app_build_seconds": round(startup, 2),
              "taken": time.strftime("%Y-%m-%d %H:%M:%S"), "steps": steps}
    (Path(args.out) / "screenshots.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"[shots] {len(steps)} screenshots in {args.out}")
    return 0


def shoot_region(out: Path) -> int:
    """The region story on the shipped artifact world; its record goes to ``screenshots-region.json``."""
    import app

    model, index, nomask, examples = app.WORLDS["artifact"]
    start = time.perf_counter()
    demo = app.build_app(model, index, nomask, examples, cache_dir=Path(tempfile.mkdtemp(prefix="motive-shots-")),
                         world="artifact")
    startup = time.perf_counter() - start
    _, url, _ = app.launch(demo, port=free_port(), host="127.0.0.1", prevent_thread_lock=True, quiet=True)
    try:
        steps = region_story(url, out)
    finally:
        demo.close()
    record = {"world": repo_relative(index.parent), "clips": len(demo.motive_engine.clips),
              "model": demo.motive_engine.attributor.index.config.get("model"), "app_build_seconds": round(startup, 2),
              "taken": time.strftime("%Y-%m-%d %H:%M:%S"), "steps": steps}
    (out / "screenshots-region.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"[shots] {len(steps)} screenshots in {repo_relative(out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

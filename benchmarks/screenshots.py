"""Screenshots of every step of Motive Studio, taken in Debian's Chromium through Playwright (offline).

    python -m benchmarks.screenshots                       # the precomputed demo world
    python -m benchmarks.screenshots --root R --assets A   # another world (model, index-motion, index-nomask)
    python -m benchmarks.screenshots --tiny                # build a tiny world first (when precomputed/ is absent)

Starts the app in-process on a free port, clicks through query → generate → motion → attribution →
candidate → no-mask comparison → curation (several queries, vote, downloads) → review (save, link,
report) → a bad upload, and saves
PNGs plus ``screenshots.json`` (which world, when, seconds per step) under ``assets/screenshots/``.
"""

from __future__ import annotations

import argparse
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

    def __init__(self, page, out: Path):
        self.page, self.out, self.steps = page, out, []
        self.start = time.perf_counter()
        out.mkdir(parents=True, exist_ok=True)

    def take(self, name: str, what: str, locator=None, keep_toasts: bool = False) -> None:
        if not keep_toasts:
            dismiss_toasts(self.page)
        path = self.out / f"{len(self.steps) + 1:02d}_{name}.png"
        time.sleep(1.0)  # let videos show a frame and plots finish their transition
        (locator.screenshot(path=path) if locator is not None else self.page.screenshot(path=path, full_page=True))
        elapsed = time.perf_counter() - self.start
        self.steps.append({"file": path.name, "shows": what, "seconds": round(elapsed, 1)})
        print(f"[shots] {path.name}: {what} ({elapsed:.1f} s)", flush=True)
        self.start = time.perf_counter()


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
    page.locator("#examples tbody tr").nth(row).click()
    name_box = page.locator("#query-name textarea")
    expect(name_box).not_to_have_value("")
    name = name_box.input_value()
    page.click("#run-btn")
    expect(page.locator("#status")).to_contain_text(f"{name}: attributed against")
    return name


def click_through(url: str, out: Path, generate_steps: int) -> list[dict]:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(WAIT_MS)
            page.goto(url)
            page.wait_for_selector("#run-btn")
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
        finally:
            browser.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(REPO / "precomputed"), help="world with model/ and index folders")
    parser.add_argument("--assets", default=str(REPO / "assets"), help="folder holding examples/")
    parser.add_argument("--out", default=str(REPO / "assets" / "screenshots"))
    parser.add_argument("--tiny", action="store_true", help="build a tiny world in a temp folder and use it")
    parser.add_argument("--generate-steps", type=int, default=10)
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).is_file():
        print(f"screenshots: Debian's chromium is not at {CHROMIUM} (apt-get install chromium)", file=sys.stderr)
        return 2
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


if __name__ == "__main__":
    sys.exit(main())

"""The running app driven through ``gradio_client``: generate → motion → attribute → curate → download,
bad inputs (each a readable message or a sensible result, and the app keeps answering), and four
concurrent clients whose results match a sequential library computation.

The tests build their own tiny demo world (a few seconds), so they do not need ``precomputed/``.
"""

from __future__ import annotations

import base64
import csv
import json
import math
import os
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from benchmarks.screenshots import free_port  # noqa: E402

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


TOP = 4
UPLOAD_MB = 5


# ------------------------------------------------------------------------------------ shared builders


def build_tiny_world(root: Path, num_clips: int = 16) -> dict[str, Path]:
    """A 16-clip MotionShapes world with a 1-layer demo model, both indexes and examples (≈ 5-10 s on CPU)."""
    from motive_core.demo.train import TrainConfig
    from motive_core.demo.world import DemoRecipe, build_demo
    from motive_core.models import VideoGeometry

    recipe = DemoRecipe(num_clips=num_clips, clip_frames=16, clip_size=32,
                        geometry=VideoGeometry(num_frames=8, fps=8.0, height=32, width=32),
                        transformer=dict(patch_size=(1, 4, 4), num_layers=1, num_attention_heads=2,
                                         attention_head_dim=16, ffn_dim=64, freq_dim=32),
                        train=TrainConfig(steps=2, batch_size=4, warmup=1), generate_steps=2)
    build_demo(root / "pre", root / "assets", recipe)
    return {"model": root / "pre" / "model", "index": root / "pre" / "index-motion",
            "nomask": root / "pre" / "index-nomask", "examples": root / "assets" / "examples",
            "cache": root / "cache"}


def make_bad_inputs(folder: Path) -> dict[str, Path]:
    """Small files for each bad-input case (a 10-minute clip at 1 fps and 32×32 is only a few kB)."""
    from motive_core.video import write_mp4

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    files = {"text": folder / "notes.mp4", "empty": folder / "empty.mp4"}
    files["text"].write_text("this is a text file, not a video\n" * 20)
    files["empty"].write_bytes(b"")
    moving = np.zeros((16, 64, 64, 3), np.uint8)
    for t in range(16):
        moving[t, 20:36, 2 + 3 * t:18 + 3 * t] = (250, 80, 40)
    files["one_frame"] = write_mp4(moving[:1], folder / "one_frame.mp4", 8.0)
    big = np.full((4, 2160, 3840, 3), 90, np.uint8)
    for t in range(4):
        big[:, 900:1300][t, :, 400 + 300 * t:1000 + 300 * t] = (240, 200, 30)
    files["4k"] = write_mp4(big, folder / "uhd_4k.mp4", 8.0)
    files["ten_minutes"] = write_mp4(rng.integers(0, 255, (600, 32, 32, 3), dtype=np.uint8),
                                     folder / "ten_minutes.mp4", 1.0)
    still = np.repeat(rng.integers(0, 255, (1, 64, 64, 3), dtype=np.uint8), 16, axis=0)
    files["static"] = write_mp4(still, folder / "static.mp4", 8.0)
    return files


def plotly_array(value) -> np.ndarray:
    """A plotly JSON array: a plain list, or plotly 6's typed-array form {"dtype", "bdata"}."""
    if isinstance(value, dict):
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
    return np.asarray(value)


def examples(world: dict[str, Path]) -> list[dict]:
    manifest = json.loads((world["examples"] / "examples.json").read_text())["examples"]
    return [{**e, "path": world["examples"] / e["file"]} for e in manifest]


# ------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    return build_tiny_world(tmp_path_factory.mktemp("app_world"))


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory) -> dict[str, Path]:
    return make_bad_inputs(tmp_path_factory.mktemp("bad_inputs"))


@pytest.fixture(scope="module")
def demo(world):
    import app

    return app.build_app(world["model"], world["index"], world["nomask"], world["examples"], cache_dir=world["cache"],
                         max_upload_mb=UPLOAD_MB)


@pytest.fixture(scope="module")
def server(demo):
    import app

    _, url, _ = app.launch(demo, port=free_port(), host="127.0.0.1", prevent_thread_lock=True, show_error=True,
                           quiet=True)
    try:
        yield url
    finally:
        demo.close()


def client(url: str):
    from gradio_client import Client

    return Client(url, verbose=False)


def library_result(world: dict[str, Path], video: Path, prompt: str, top: int):
    """The same attribution computed directly with the library, sequentially (the reference)."""
    from motive_core.models import load_model
    from motive_core.query import Attributor
    from motive_core.video import read_video

    attributor = Attributor(world["index"], model=load_model(world["model"], device="cpu"))
    prepared = attributor.featurizer.prepare(read_video(video, max_seconds=60.0, max_side=1024))
    return attributor.attribute(prepared, prompt, top)


# --------------------------------------------------------------------------------------------- tests


def test_api_names_are_stable(server):
    import app

    api = client(server).view_api(print_info=False, return_format="dict")
    assert set(api["named_endpoints"]) == {f"/{name}" for name in app.API_NAMES}
    info = client(server).predict(api_name="/info")
    assert info["index"]["clips"] == 16 and info["nomask_index"]["clips"] == 16
    assert len(info["examples"]) >= 4


def test_generate_attribute_curate_download(server, world):
    from gradio_client import handle_file

    from motive_core.attribution.scoring import majority_vote

    c = client(server)
    video, name = c.predict("a red circle bouncing right on a plain background", 3, 2, 2.0, api_name="/generate")
    assert Path(video).is_file() and name.startswith("generated")

    triptych, plot, latent, warnings, stats, status = c.predict(handle_file(video), "a red circle bouncing", name,
                                                                api_name="/motion")
    assert Path(triptych).suffix == ".mp4" and Path(latent).is_file()
    assert plot["type"] == "plotly" and len(json.loads(plot["plot"])["data"]) == 3
    assert stats["frames"] == 8 and len(stats["per_frame_mean"]) == 8 and "motion ready" in status

    out = c.predict(handle_file(video), "a red circle bouncing", name, TOP, False, api_name="/attribute")
    pos, neg, hist, scatter, summary, candidate, compare_video, candidate_md, nomask_md, _, result, status = out
    assert len(pos) == len(neg) == TOP
    assert all(Path(item["image"]).is_file() and " · " in item["caption"] for item in pos + neg)
    scores = [e["score"] for e in result["positives"]]
    assert scores == sorted(scores, reverse=True) and result["num_clips"] == 16
    assert pos[0]["caption"].startswith(f"+1 · {scores[0]:+.3f} · {result['positives'][0]['id']}")
    assert Path(compare_video).suffix == ".mp4" and result["positives"][0]["id"] in candidate_md
    reference = library_result(world, Path(video), "a red circle bouncing", TOP)
    hist_data = json.loads(hist["plot"])["data"]
    np.testing.assert_allclose(np.sort(plotly_array(hist_data[0]["x"])), np.sort(reference.scores), atol=1e-5)
    assert {t["name"] for t in hist_data[1:]} == {"shown positives", "shown negatives"}
    assert "Spearman" in json.loads(scatter["plot"])["layout"]["title"]["text"]
    for key in ("decode", "motion", "gradient", "projection", "ranking"):
        assert key in result["timings"]

    assert [e["id"] for e in result["positives"]] == [e["id"] for e in reference.positives]
    np.testing.assert_allclose(scores, [e["score"] for e in reference.positives], atol=1e-5)

    other = result["negatives"][1]
    compare_video, md = c.predict(other["id"], api_name="/compare")
    assert Path(compare_video).is_file() and md.startswith(f"**−2 · {other['id']}**")
    assert len(c.predict(2, api_name="/rerank")[0]) == 2

    table, message = c.predict("generated", api_name="/add_query")
    assert len(table["data"]) == 1 and "1 query in the curation list" in message
    first = examples(world)[0]
    c.predict(handle_file(str(first["path"])), first["prompt"], first["motion"], TOP, False, api_name="/attribute")
    table, _ = c.predict("", api_name="/add_query")
    assert [row[1] for row in table["data"]] == ["generated", first["motion"]]

    selection, overlap, vote_md, csv_path, jsonl_path, others_path = c.predict(0.25, 75, api_name="/vote")
    assert len(selection["data"]) == math.ceil(0.25 * 16) and "Kept **4** of 16" in vote_md
    assert json.loads(overlap["plot"])["data"][0]["type"] == "heatmap"
    rows = list(csv.DictReader(line for line in open(csv_path) if not line.startswith("#")))
    lines = [json.loads(line) for line in open(jsonl_path)][1:]  # after the settings line
    assert [r["id"] for r in rows] == [line["id"] for line in lines] == [r[1] for r in selection["data"]]
    assert {"score_generated", f"score_{first['motion']}", "votes", "file", "caption"} <= set(rows[0])
    assert all((world["index"].parent / "clips" / r["file"]).is_file() for r in rows)

    # the selection is exactly the library's majority vote over the two queries' scores
    second = library_result(world, first["path"], first["prompt"], TOP)
    expected = majority_vote(np.stack([reference.scores, second.scores]), 75.0, 0.25)
    assert [r["id"] for r in rows] == _ids(world, expected.indices)

    table, message = c.predict(api_name="/clear_queries")
    assert table["data"] == [] and "empty" in message


def _ids(world: dict[str, Path], rows) -> list[str]:
    clips = [json.loads(line) for line in open(world["index"] / "clips.jsonl")]
    return [clips[int(i)]["id"] for i in rows]


def test_nomask_switch_shows_both_rankings(server, world):
    from gradio_client import handle_file

    c = client(server)
    ex = examples(world)[1]
    out = c.predict(handle_file(str(ex["path"])), ex["prompt"], "q", TOP, True, api_name="/attribute")
    nomask_md, nomask_table, result = out[8], out[9], out[10]
    assert "Motive (mask) vs no mask" in nomask_md and "Jaccard" in nomask_md
    assert len(nomask_table["data"]) == TOP and result["nomask"] is not None
    mask_ids = [e["id"] for e in result["positives"]]
    nomask_ids = [e["id"] for e in result["nomask"]["positives"]]
    shared = len(set(mask_ids) & set(nomask_ids))
    assert f"**{shared} of {TOP}**" in nomask_md
    md, table = c.predict(False, api_name="/compare_nomask")
    assert md == ""
    md, table = c.predict(True, api_name="/compare_nomask")
    assert f"**{shared} of {TOP}**" in md


@pytest.mark.parametrize("case, message", [
    ("text", "is not a video"),
    ("empty", "empty (0 bytes)"),
    ("one_frame", "only 1 frame"),
    ("ten_minutes", "over the 60 s limit"),
])
def test_bad_inputs_give_readable_messages(server, world, bad_inputs, case, message):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    c = client(server)
    for api_name, args in (("/motion", ("", "")), ("/attribute", ("", "", TOP, False))):
        with pytest.raises(AppError) as caught:
            c.predict(handle_file(str(bad_inputs[case])), *args, api_name=api_name)
        assert message in str(caught.value) and "Traceback" not in str(caught.value)
    _still_serving(c, world)


def test_large_and_static_clips_give_sensible_results(server, world, bad_inputs):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    c = client(server)
    *_, warnings, stats, _ = c.predict(handle_file(str(bad_inputs["4k"])), "", "4k", api_name="/motion")
    assert stats["frames"] == 8 and stats["height"] == 32 and not stats["is_near_static"]
    out = c.predict(handle_file(str(bad_inputs["4k"])), "", "4k", TOP, False, api_name="/attribute")
    assert len(out[10]["positives"]) == TOP

    *_, warnings, stats, _ = c.predict(handle_file(str(bad_inputs["static"])), "", "still", api_name="/motion")
    assert stats["is_near_static"] and stats["motion_max"] < 0.5 and "Nearly static" in warnings
    with pytest.raises(AppError) as caught:  # a perfectly still clip has a zero mask: nothing to attribute
        c.predict(handle_file(str(bad_inputs["static"])), "", "still", TOP, False, api_name="/attribute")
    assert "no motion at all" in str(caught.value)
    _still_serving(c, world)


def test_actions_out_of_order_explain_what_to_do(server, world):
    from gradio_client.exceptions import AppError

    c = client(server)  # a fresh session: nothing attributed, nothing listed
    for api_name, args, message in (("/rerank", (3,), "Attribute a query first"),
                                    ("/compare", ("00000_float",), "Attribute a query first"),
                                    ("/add_query", ("x",), "Attribute a query first"),
                                    ("/vote", (0.1, 90), "curation list is empty"),
                                    ("/generate", ("", 0, 2, 1.0), "Write a prompt first"),
                                    ("/motion", (None, "", ""), "No query video yet")):
        with pytest.raises(AppError) as caught:
            c.predict(*args, api_name=api_name)
        assert message in str(caught.value)
    _still_serving(c, world)


def test_four_concurrent_clients_match_sequential_results(server, world):
    from gradio_client import handle_file

    queries = [(e["path"], f"{e['prompt']} (concurrent {i})") for i, e in enumerate(examples(world)[:4])]
    expected = [library_result(world, path, prompt, TOP) for path, prompt in queries]

    def run(query: tuple[Path, str]) -> dict:
        path, prompt = query
        return client(server).predict(handle_file(str(path)), prompt, "", TOP, False, api_name="/attribute")[10]

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(run, queries))
    for got, want in zip(results, expected):
        assert [e["id"] for e in got["positives"]] == [e["id"] for e in want.positives]
        assert [e["id"] for e in got["negatives"]] == [e["id"] for e in want.negatives]
        np.testing.assert_allclose([e["score"] for e in got["positives"]], [e["score"] for e in want.positives],
                                   atol=1e-5)


def _still_serving(c, world) -> None:
    """The app answers a light and a heavy request after the failure."""
    from gradio_client import handle_file

    assert c.predict(api_name="/info")["index"]["clips"] == 16
    ex = examples(world)[0]
    stats = c.predict(handle_file(str(ex["path"])), ex["prompt"], "ok", api_name="/motion")[4]
    assert stats["frames"] == 8


def test_a_missing_training_video_gets_a_stand_in_not_an_error(demo):
    from PIL import Image

    engine = demo.motive_engine
    ghost = {"id": "ghost", "file": "no_such_clip.mp4", "score": -0.5}
    visual = engine.clip_visual(ghost)
    assert visual.note == "video missing" and visual.mask.max() == 0
    assert Image.open(engine.thumbnail(ghost)).size[0] > 0


# ----------------------------------------------------------------------------- display data, no server


def test_rank_correlation_matches_scipy():
    from scipy.stats import spearmanr

    from motive_core.ui.display import rank_correlation

    rng = np.random.default_rng(1)
    a, b = rng.normal(size=200), rng.normal(size=200)
    b[:100] += a[:100]
    assert rank_correlation(a, b) == pytest.approx(spearmanr(a, b).statistic, abs=1e-9)
    a[3] = np.nan  # entries missing on either side are ignored
    keep = np.isfinite(a)
    assert rank_correlation(a, b) == pytest.approx(spearmanr(a[keep], b[keep]).statistic, abs=1e-9)


def test_overlaps_and_selection_rows():
    from motive_core.attribution.scoring import majority_vote
    from motive_core.ui.display import query_overlap, ranking_overlap, selection_rows

    chosen = np.array([[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0]], bool)
    counts, jaccard = query_overlap(chosen)
    assert counts.tolist() == [[2, 1, 0], [1, 2, 0], [0, 0, 0]]
    assert jaccard[0, 1] == pytest.approx(1 / 3) and jaccard[2, 2] == 1.0
    assert ranking_overlap(["a", "b", "c"], ["c", "d", "a"]) == {"shared": ["a", "c"], "count": 2, "jaccard": 0.5}
    scores = np.array([[0.9, 0.1, 0.5, 0.2], [0.8, 0.7, 0.1, 0.0]])
    selection = majority_vote(scores, percentile=50, fraction=0.5)
    clips = [{"id": f"c{i}", "caption": f"clip {i}", "labels": {"motion": "spin"}} for i in range(4)]
    assert selection_rows(selection, clips) == [[1, "c0", "spin", 2, "+0.8500", "clip 0"],
                                                [2, "c1", "spin", 1, "+0.4000", "clip 1"]]


def test_indexes_with_different_clips_are_compared_by_id():
    from motive_core.ui.display import align_by_id

    mask_clips = [{"id": "a"}, {"id": "b"}, {"id": "d"}]  # "c" failed under the mask (e.g. a static clip)
    nomask_clips = [{"id": "a"}, {"id": "b"}, {"id": "c"}, {"id": "d"}]
    a, b = align_by_id(mask_clips, np.array([0.1, 0.2, 0.4]), nomask_clips, np.array([1.0, 2.0, 3.0, 4.0]))
    assert a.tolist() == [0.1, 0.2, 0.4] and b.tolist() == [1.0, 2.0, 4.0]


def test_side_by_side_panels_are_labelled_and_aligned():
    from motive_core.ui.display import HEADER_PX, ClipVisual, comparison, latent_mask_image, query_triptych

    rng = np.random.default_rng(0)
    visual = ClipVisual(rng.integers(0, 255, (8, 32, 32, 3), dtype=np.uint8), rng.random((8, 32, 32), np.float32))
    triptych = query_triptych(visual)
    assert triptych.shape[0] == 8 and triptych.shape[1] == 32 * 6 + HEADER_PX and triptych.shape[2] == 3 * 192 + 8
    longer = ClipVisual(np.zeros((16, 32, 32, 3), np.uint8), np.zeros((16, 32, 32), np.float32))
    assert comparison(visual, longer, "+1 0.5 x", 0.5).shape[0] == 8  # resampled to the shorter clip
    assert latent_mask_image(rng.random((21, 6, 10), np.float32)).ndim == 3


def test_command_line_refuses_a_missing_model_with_a_message(world, tmp_path, capsys):
    import app

    assert app.main(["--model", str(tmp_path / "nowhere"), "--index", str(world["index"])]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert app.main(["--model", str(world["model"]), "--index", str(tmp_path)]) == 2
    assert "is not an attribution index" in capsys.readouterr().err


# ------------------------------------------------------------------------------- review sessions


def test_result_names_the_prompt_used_and_what_it_did(server, world):
    """The same clip under a prompt and under none: each result says which prompt was used and its role."""
    from gradio_client import handle_file

    c = client(server)
    ex = examples(world)[2]
    with_prompt = c.predict(handle_file(str(ex["path"])), ex["prompt"], "p", TOP, False, api_name="/attribute")
    without = c.predict(handle_file(str(ex["path"])), "", "p", TOP, False, api_name="/attribute")
    for out, prompt in ((with_prompt, ex["prompt"]), (without, "")):
        summary, result = out[4], out[10]
        assert result["query"]["prompt"] == prompt
        assert result["query"]["conditioning"] in ("caption", "null")
        assert f"conditioning '{result['query']['conditioning']}'" in summary
        assert result["query"]["conditioning_note"] in summary
    assert f"Prompt used: “{ex['prompt']}”" in with_prompt[4] and "Prompt used: no prompt" in without[4]
    conditioning = with_prompt[10]["query"]["conditioning"]
    assert with_prompt[10]["query"]["prompt_in_gradient"] == (conditioning == "caption")
    assert without[10]["query"]["prompt_in_gradient"] is False
    from motive_core.demo.world import DemoRecipe

    assert conditioning == DemoRecipe().settings.conditioning == "null"  # the shipped setting is what is tested
    for side in ("positives", "negatives"):  # under "null" the prompt cannot move the ranking
        assert [(e["id"], e["score"]) for e in with_prompt[10][side]] == \
            [(e["id"], e["score"]) for e in without[10][side]]


def test_other_sessions_traffic_does_not_expire_a_session(server, demo, world, bad_inputs):
    """Session A attributes a clip; session B then prepares five other clips (more than the shared cache
    holds, here set to four); A's no-mask comparison is recomputed, not refused with 'no longer in memory'."""
    from gradio_client import handle_file

    shared = demo.motive_engine.prepared
    capacity, shared.capacity = shared.capacity, 4
    a, b = client(server), client(server)
    ex = examples(world)
    first = a.predict(handle_file(str(ex[3]["path"])), ex[3]["prompt"], "a", TOP, False, api_name="/attribute")
    assert first[10]["nomask"] is None
    others = [e["path"] for e in ex[:3]] + [bad_inputs["4k"], bad_inputs["one_frame"].parent / "4k_copy.mp4"]
    others[-1].write_bytes(bad_inputs["4k"].read_bytes() + b"\0")  # a different file (new content hash)
    for path in others:
        b.predict(handle_file(str(path)), "", "b", api_name="/motion")
    try:
        md, table = a.predict(True, api_name="/compare_nomask")
    finally:
        shared.capacity = capacity
    assert "Motive (mask) vs no mask" in md and len(table["data"]) == TOP


def test_the_shared_window_cache_evicts_by_count_and_by_bytes():
    from motive_core.ui.display import LruCache

    by_count = LruCache(2)
    for key in "abc":
        by_count.put(key, key)
    assert [by_count.get(k) for k in "abc"] == [None, "b", "c"]
    by_bytes = LruCache(10, max_bytes=100, size=len)
    by_bytes.put("a", "x" * 60)
    by_bytes.put("b", "x" * 30)
    assert by_bytes.get("a") is not None  # 90 bytes fit; "a" is now the most recent
    by_bytes.put("c", "x" * 30)  # 120 bytes: the least recent ("b") goes
    assert by_bytes.get("b") is None and by_bytes.get("a") and by_bytes.get("c")
    by_bytes.put("huge", "x" * 500)  # one entry over the budget is kept alone rather than refused
    assert by_bytes.get("huge") and by_bytes.get("a") is None and by_bytes.get("c") is None
    with pytest.raises(ValueError, match="size"):
        LruCache(4, max_bytes=10)


def test_only_meant_files_are_served_and_replies_hold_no_server_paths(server, world, tmp_path):
    """Index files and stray files in gradio's temp folder are refused; served media still load; /info and
    the vote summary name folders without absolute server paths."""
    import urllib.error
    import urllib.request

    from gradio.utils import get_upload_folder
    from gradio_client import handle_file

    def status(path: Path) -> int:
        try:
            with urllib.request.urlopen(f"{server}gradio_api/file={path}") as reply:
                return reply.status
        except urllib.error.HTTPError as err:
            return err.code

    for name in ("vectors.npy", "clips.jsonl", "config.json"):
        assert (world["index"] / name).is_file() and status(world["index"] / name) == 403, name
    stray = Path(get_upload_folder()) / "not-from-this-app" / "secret.txt"
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_text("a file the app never created")
    assert status(stray) == 403

    c = client(server)
    ex = examples(world)[0]
    out = c.predict(handle_file(str(ex["path"])), ex["prompt"], "served", TOP, False, api_name="/attribute")
    assert out[0][0]["image"]  # the client downloaded the tile through /file=, so served media still load
    c.predict("", api_name="/add_query")
    vote_md = c.predict(0.25, 75, api_name="/vote")[2]
    info = c.predict(api_name="/info")
    for text in (json.dumps(info), vote_md):
        for root in (str(REPO), str(world["index"].parent.parent), "/tmp/"):
            assert root not in text


@pytest.mark.parametrize("api_name, args, message", [
    ("/generate", ("a red circle", 2**64, 2, 2.0), "seed must be"),
    ("/generate", ("a red circle", -1, 2, 2.0), "seed must be"),
    ("/generate", ("a red circle", 0, 10**6, 2.0), "steps must be"),
    ("/generate", ("a red circle", 0, 2, 100.0), "guidance"),
    ("/rerank", (10**9,), "top-K"),
    ("/vote", (7.0, 90), "fraction kept"),
    ("/vote", (0.1, 1000), "percentile"),
])
def test_numbers_out_of_range_are_refused_by_name_in_one_log_line(server, world, capfd, caplog, api_name, args,
                                                                  message):
    import logging

    from gradio_client.exceptions import AppError

    c = client(server)
    capfd.readouterr()
    with caplog.at_level(logging.INFO, logger="motive_studio"), pytest.raises(AppError) as caught:
        c.predict(*args, api_name=api_name)
    assert message in str(caught.value)
    assert "Traceback" not in "".join(capfd.readouterr())
    logged = [r.getMessage() for r in caplog.records if message in r.getMessage()]
    assert len(logged) == 1 and "\n" not in logged[0]  # logged once, in one line
    _still_serving(c, world)


def test_user_text_is_shown_as_text_not_markup(server, world):
    from gradio_client import handle_file

    c = client(server)
    ex = examples(world)[0]
    name = '<img src=x onerror="alert(1)"><b>bold</b>'
    out = c.predict(handle_file(str(ex["path"])), "<i>prompt</i>", name, TOP, False, api_name="/attribute")
    summary, status = out[4], out[11]
    for text in (summary, status):
        assert "<img" not in text and "<b>" not in text and "&lt;img" in text
    assert "<i>" not in summary and "&lt;i&gt;prompt" in summary
    assert out[10]["query"]["name"] == name  # the JSON keeps the text as given


# ------------------------------------------------------------------------------------ attributed window


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory) -> Path:
    """20 s at 8 fps, 64×64: a square moves during the first 4 s, then everything is still."""
    from motive_core.video import write_mp4

    frames = np.full((160, 64, 64, 3), 30, np.uint8)
    for t in range(160):
        x = 4 + (3 * t if t < 32 else 3 * 31)
        frames[t, 24:40, min(x, 44):min(x, 44) + 16] = (240, 90, 40)
    return write_mp4(frames, tmp_path_factory.mktemp("long") / "moves_first_4s.mp4", 8.0)


def test_window_defaults_to_the_most_motion_and_reads_only_the_window(server, long_clip):
    from gradio_client import handle_file

    c = client(server)
    *_, warnings, stats, status = c.predict(handle_file(str(long_clip)), "", "long", "", api_name="/motion")
    window = stats["window"]
    assert window["chosen"] == "most motion" and window["start"] < 4.0 - window["duration"] + 0.5
    assert window["clip_duration"] == pytest.approx(20.0, abs=0.2) and window["duration"] == pytest.approx(1.0)
    assert window["decoded_frames"] <= 8 * window["duration"] + 2  # the window only, not 160 frames
    assert not stats["is_near_static"] and "window" in status
    out = c.predict(handle_file(str(long_clip)), "", "long", TOP, False, "", api_name="/attribute")
    assert out[10]["query"]["window"]["start"] == window["start"]
    assert f"{window['start']:.2f}" in out[4]


def test_a_still_window_of_a_moving_clip_is_told_so_not_called_static(server, long_clip):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    c = client(server)
    *_, warnings, stats, _ = c.predict(handle_file(str(long_clip)), "", "late", "10", api_name="/motion")
    assert stats["window"] == {**stats["window"], "start": 10.0, "chosen": "given"}
    assert "outside the attributed window" in warnings and "Nearly static" not in warnings
    with pytest.raises(AppError) as caught:
        c.predict(handle_file(str(long_clip)), "", "late", TOP, False, "10", api_name="/attribute")
    assert "outside the attributed window" in str(caught.value) and "no motion at all" not in str(caught.value)
    with pytest.raises(AppError) as caught:
        c.predict(handle_file(str(long_clip)), "", "late", "19.5", api_name="/motion")
    assert "window start must be between 0 and 19.00 s" in str(caught.value)
    with pytest.raises(AppError) as caught:
        c.predict(handle_file(str(long_clip)), "", "late", "soon", api_name="/motion")
    assert "window start must be a number of seconds" in str(caught.value)


def test_most_moving_window_and_motion_elsewhere(long_clip):
    from motive_core.window import most_moving_start, motion_elsewhere, motion_profile

    profile = motion_profile(long_clip, fps=8.0, max_seconds=60.0)
    assert profile.duration == pytest.approx(20.0, abs=0.2) and len(profile.change) >= 150
    start = most_moving_start(profile, span=1.0)
    assert 0.0 <= start <= 3.0
    assert motion_elsewhere(profile, start, 1.0) is None
    assert motion_elsewhere(profile, 12.0, 1.0) == start


# ---------------------------------------------------------------------------------------- reviews


def _attributed(c, ex: dict, name: str):
    from gradio_client import handle_file

    return c.predict(handle_file(str(ex["path"])), ex["prompt"], name, TOP, False, api_name="/attribute")


def test_curation_list_refuses_duplicates_and_removes_rows(server, world):
    from gradio_client.exceptions import AppError

    c = client(server)
    ex = examples(world)
    with pytest.raises(AppError) as caught:
        c.predict("", api_name="/add_query")
    assert "Attribute a query first" in str(caught.value)
    _attributed(c, ex[0], "first")
    c.predict("", api_name="/add_query")
    with pytest.raises(AppError) as caught:
        c.predict("again", api_name="/add_query")
    assert "already row 1" in str(caught.value)
    _attributed(c, ex[1], "second")
    table, _ = c.predict("", api_name="/add_query")
    assert [r[1] for r in table["data"]] == ["first", "second"]
    table, message = c.predict(1, api_name="/remove_query")
    assert [r[1] for r in table["data"]] == ["second"] and "Removed “first”" in message
    with pytest.raises(AppError) as caught:
        c.predict(5, api_name="/remove_query")
    assert "between 1 and 1" in str(caught.value)


def test_selection_files_carry_their_settings(server, world):
    c = client(server)
    ex = examples(world)[0]
    _attributed(c, ex, "stamped")
    c.predict("", api_name="/add_query")
    _, _, _, csv_path, jsonl_path, others_path = c.predict(0.25, 80, api_name="/vote")
    header = [line for line in open(csv_path) if line.startswith("#")]
    settings = {line[2:].split(": ", 1)[0]: json.loads(line.split(": ", 1)[1]) for line in header}
    assert settings["fraction"] == 0.25 and settings["percentile"] == 80
    assert settings["index"] == "index-motion" and settings["index_clips"] == 16 and settings["model"]
    assert [(q["name"], q["prompt"]) for q in settings["queries"]] == [("stamped", ex["prompt"])]
    assert settings["queries"][0]["window"]["chosen"] == "whole clip"
    assert settings["index_settings"]["conditioning"] in ("caption", "null")
    first = json.loads(open(jsonl_path).readline())["motive_selection_settings"]
    assert first == settings
    kept = [r["id"] for r in csv.DictReader(line for line in open(csv_path) if not line.startswith("#"))]
    others = [r["id"] for r in csv.DictReader(line for line in open(others_path) if not line.startswith("#"))]
    assert len(kept) == 4 and len(others) == 12 and not set(kept) & set(others)  # the two lists split the index
    assert open(others_path).readline().startswith('# list: "every clip not in the selection"')


def test_review_saves_reopens_in_another_session_and_exports_a_report(server, world, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    c = client(server)
    ex = examples(world)
    _attributed(c, ex[0], "<b>first</b>")
    c.predict("", api_name="/add_query")
    box = (0, 0, 20, 32, None, 0, 6, True)  # the second query: a box on the left, frames 0-5, isolated
    c.predict(handle_file(str(ex[1]["path"])), ex[1]["prompt"], "second", TOP, False, "", *box, api_name="/attribute")
    c.predict("", api_name="/add_query")
    selection = c.predict(0.25, 75, api_name="/vote")[0]
    review_file, md = c.predict("looks right", 0.25, 75, ex[1]["prompt"], "second", "",
                                handle_file(str(ex[1]["path"])), *box, api_name="/save_review")
    assert "?review=" in md and Path(review_file).is_file()
    saved = json.loads(Path(review_file).read_text())
    assert [q["name"] for q in saved["queries"]] == ["<b>first</b>", "second"] and saved["notes"] == "looks right"
    assert all(len(q["scores"]) == 16 and q["window"]["chosen"] for q in saved["queries"])
    assert saved["queries"][0]["region"] is None
    assert saved["queries"][1]["region"] == {"boxes": [{"x0": 0.0, "y0": 0.0, "x1": 20.0, "y1": 32.0, "frame": None}],
                                             "frames": [0, 6], "isolate": True}
    assert list(saved["current"]["region"].values()) == list(box)

    other = client(server)  # a new session (a reload) gets the whole review back from the file
    table, notes, fraction, percentile, prompt, name, window, video, message, *region = other.predict(
        handle_file(review_file), api_name="/open_review")
    assert [r[1] for r in table["data"]] == ["<b>first</b>", "second"] and notes == "looks right"
    assert "selection box 0,0,20,32, frames 0:6 (isolated)" in table["data"][1][3]
    assert (fraction, percentile, prompt, name) == (0.25, 75, ex[1]["prompt"], "second")
    assert video and Path(video).is_file() and "Reopened" in message
    assert tuple(region) == box  # the box, frames and isolation are back in their fields
    assert other.predict(0.25, 75, api_name="/vote")[0]["data"] == selection["data"]  # same scores, same vote

    report_path, _ = other.predict("looks right", api_name="/report")
    text = Path(report_path).read_text()
    assert "&lt;b&gt;first&lt;/b&gt;" in text and "<b>first</b>" not in text
    sources = re.findall(r'src="([^"]*)"', text)
    assert sources and all(s.startswith("data:") for s in sources) and "<video" in text
    assert "looks right" in text and "&quot;conditioning&quot;" in text
    assert "selection box 0,0,20,32, frames 0:6 (isolated)" in text  # the report says what the query attributed

    damaged = tmp_path / "damaged.json"
    damaged.write_text(json.dumps({**saved, "queries": [{**saved["queries"][0], "scores": [0.1] * 3}]}))
    with pytest.raises(AppError) as caught:
        other.predict(handle_file(str(damaged)), api_name="/open_review")
    assert "does not carry 16 finite scores" in str(caught.value)
    sneaky = tmp_path / "sneaky.json"
    sneaky.write_text(json.dumps({**saved, "queries": [{**saved["queries"][0], "key": "../../etc"}]}))
    with pytest.raises(AppError) as caught:
        other.predict(handle_file(str(sneaky)), api_name="/open_review")
    assert "malformed key or window" in str(caught.value)
    boxless = tmp_path / "boxless.json"
    boxless.write_text(json.dumps({**saved, "queries": [{**saved["queries"][1], "region": {"boxes": [{"x0": 5}]}}]}))
    with pytest.raises(AppError) as caught:
        other.predict(handle_file(str(boxless)), api_name="/open_review")
    assert "malformed selection" in str(caught.value)
    (tmp_path / "notes.json").write_text("not json")
    with pytest.raises(AppError) as caught:
        other.predict(handle_file(str(tmp_path / "notes.json")), api_name="/open_review")
    assert "is not a Motive review" in str(caught.value)


# ------------------------------------------------------------------------------------ disk and uploads


def test_uploads_over_the_stated_limit_are_refused(server, tmp_path):
    import httpx

    info = client(server).predict(api_name="/info")
    assert info["max_upload_mb"] == UPLOAD_MB
    big = tmp_path / "big.mp4"
    big.write_bytes(b"\0" * (UPLOAD_MB * 1024 * 1024 + 1))
    with open(big, "rb") as handle:
        reply = httpx.post(f"{server}gradio_api/upload", files={"files": ("big.mp4", handle, "video/mp4")})
    assert reply.status_code == 413 and "maximum allowed size" in reply.text


def test_folders_are_cleaned_by_age_then_by_size_sparing_fresh_files(tmp_path):
    from motive_core.ui.disk import FolderLimit, prune_folder

    now = 1_000_000.0
    ages = {"old.mp4": 7200, "mid1.png": 3000, "mid2.png": 2000, "fresh.mp4": 60, "keep/r.json": 9999}
    for name, age in ages.items():
        path = tmp_path / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"x" * 1000)
        os.utime(path, (now - age, now - age))
    limit = FolderLimit(tmp_path, max_bytes=2500, max_age_s=3600, min_age_s=600, skip=("keep",))
    result = prune_folder(limit, now=now)
    # old.mp4 is past the age; then mid1 (oldest) goes for the cap; mid2 fits; fresh is never touched
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["fresh.mp4", "mid2.png", "r.json"]
    assert result == {"removed": 2, "freed": 2000, "kept": 2000}
    tight = FolderLimit(tmp_path, max_bytes=0, max_age_s=0, min_age_s=600, skip=("keep",))
    prune_folder(tight, now=now)
    assert (tmp_path / "fresh.mp4").is_file() and not (tmp_path / "mid2.png").exists()


def test_one_session_runs_one_model_job_at_a_time_while_others_are_served(server, world, bad_inputs):
    """Jobs from one page beyond the first running one are refused with a reason; another page is served."""
    from gradio_client import handle_file

    busy, other = client(server), client(server)
    ex = examples(world)
    jobs = [busy.submit(handle_file(str(bad_inputs["4k"])), "", f"busy {i}", TOP, True, "", api_name="/attribute")
            for i in range(3)]
    served = other.predict(handle_file(str(ex[0]["path"])), ex[0]["prompt"], "other", TOP, False, "",
                           api_name="/attribute")
    outcomes = []
    for job in jobs:
        try:
            outcomes.append(job.result()[10]["query"]["name"])
        except Exception as err:  # noqa: BLE001 - the refusal is the point
            outcomes.append(str(err))
    refused = [o for o in outcomes if "already has a model job running" in o]
    assert refused and len(refused) < 3 and any(o.startswith("busy") for o in outcomes)
    assert served[10]["query"]["name"] == "other"
    assert client(server).predict(api_name="/info")["limits"]["jobs_per_session"] == 1


def test_artifact_world_tiles_say_whether_a_clip_was_planted_and_the_world_is_one_flag_away():
    import app
    from motive_core.ui.display import candidate_caption

    entry = {"id": "00003_bounce", "score": 0.5, "caption": "a red square bouncing", "labels": {"artifact": "jitter"}}
    assert candidate_caption(1, entry, True, short=True) == "+1 · +0.500 · 00003_bounce · planted: jitter"
    entry["labels"]["artifact"] = "none"
    assert candidate_caption(2, entry, False, short=True).endswith("· not planted")
    del entry["labels"]["artifact"]  # the clean world carries no such label: nothing is claimed
    assert candidate_caption(1, entry, True, short=True) == "+1 · +0.500 · 00003_bounce"
    args = app.parse_args([])  # the app opens on the artifact story; the clean world is one flag (or menu) away
    assert (args.world, Path(args.index)) == ("artifact", REPO / "precomputed" / "artifact" / "index-motion")
    assert Path(args.model) == REPO / "precomputed" / "artifact" / "model"
    assert Path(args.examples) == REPO / "assets" / "examples-artifact"
    assert app.parse_args(["--world", "clean"]).index == str(REPO / "precomputed" / "index-motion")
    assert list(app._other_worlds(args)) == ["clean"] and list(app._other_worlds(app.parse_args(["--world", "clean"]))) \
        == ["artifact"]


def test_examples_are_offered_only_with_the_model_that_made_them(tmp_path):
    """The demo's example clips were generated by the demo model: another model gets none unless asked."""
    import app

    demo_examples = str(REPO / "assets" / "examples")
    assert app.parse_args(["--world", "clean"]).examples == demo_examples
    assert app.parse_args(["--world", "clean", "--model", "demo"]).examples == demo_examples
    assert app.parse_args(["--model", "demo"]).examples is None  # the clean model with the artifact world's index
    assert app.parse_args(["--model", str(tmp_path), "--index", str(tmp_path)]).examples is None
    assert app.parse_args(["--model", str(tmp_path), "--examples", demo_examples]).examples == demo_examples


# ------------------------------------------------------------------------------------ region and time selection


@pytest.fixture(scope="module")
def corner_clip(tmp_path_factory) -> Path:
    """2 s at 8 fps, 64×64: a square moves right in the top-left; a still square sits in the bottom-right."""
    from motive_core.video import write_mp4

    frames = np.full((16, 64, 64, 3), 30, np.uint8)
    frames[:, 44:60, 44:60] = (40, 200, 90)
    for t in range(16):
        frames[t, 4:20, 2 + 2 * t:18 + 2 * t] = (240, 90, 40)
    return write_mp4(frames, tmp_path_factory.mktemp("corner") / "corner_mover.mp4", 8.0)


def test_a_box_and_frame_range_restrict_the_attribution_and_are_recorded(server, corner_clip):
    """Optional trailing numbers select a box and frames: the result records them; a box over the whole frame
    changes nothing (W ⊙ 1 = W), a box on the mover for a few frames changes the ranking's scores."""
    from gradio_client import handle_file

    c = client(server)
    video = handle_file(str(corner_clip))
    whole = c.predict(video, "", "corner", TOP, False, "", api_name="/attribute")[10]
    assert whole["query"]["selection"] is None

    full = c.predict(video, "", "corner", TOP, False, "", 0, 0, 64, 64, api_name="/attribute")[10]
    assert full["query"]["selection"]["description"] == "box 0,0,64,64"
    assert full["query"]["selection"]["motion_kept"] == pytest.approx(1.0)
    for side in ("positives", "negatives"):
        assert [e["id"] for e in full[side]] == [e["id"] for e in whole[side]]
        assert [e["score"] for e in full[side]] == pytest.approx([e["score"] for e in whole[side]], abs=1e-5)

    out = c.predict(video, "", "corner", TOP, False, "", 0, 0, 44, 24, None, 0, 4, api_name="/attribute")
    chosen = out[10]["query"]["selection"]
    assert chosen["boxes"] == [{"x0": 0.0, "y0": 0.0, "x1": 44.0, "y1": 24.0, "frame": None}]
    assert chosen["frames"] == [0, 4] and chosen["description"] == "box 0,0,44,24, frames 0:4"
    assert chosen["query_frames"] and all(0 <= f < 4 for f in chosen["query_frames"])
    assert 0 < chosen["motion_kept"] < 1
    assert "selection box 0,0,44,24, frames 0:4" in out[4]
    whole_scores = {e["id"]: e["score"] for e in whole["positives"] + whole["negatives"]}
    assert any(abs(e["score"] - whole_scores[e["id"]]) > 1e-6
               for e in out[10]["positives"] + out[10]["negatives"] if e["id"] in whole_scores)

    # the same selection on the motion tab: drawn on the players and echoed in the statistics
    *_, warnings, stats, status = c.predict(video, "", "corner", "", 0, 0, 44, 24, 0, None, None, api_name="/motion")
    assert stats["selection"]["description"] == "box 0,0,44,24@0"
    assert stats["query_size"] == {"width": 64, "height": 64, "frames": 8, "fps": 8.0}  # the 1 s window read
    assert "selection box 0,0,44,24@0" in warnings


@pytest.mark.parametrize("region, message", [
    ((100, 100, 120, 120), "lies outside the query's 64×64 frame"),
    ((44, 44, 60, 60), "holds no motion"),
    ((0, 0, 44), "needs all four edges"),
    ((None, None, None, None, 3), "box frame was given without a box"),
    ((0, 0, 44, 24, None, 4, 2), "is empty or negative"),
    ((None, None, None, None, None, 1.5), "whole frame number"),
])
def test_a_bad_selection_is_refused_by_what_is_wrong(server, world, corner_clip, region, message):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    c = client(server)
    for api_name, args in (("/motion", ("", "corner", "")), ("/attribute", ("", "corner", TOP, False, ""))):
        with pytest.raises(AppError) as caught:
            c.predict(handle_file(str(corner_clip)), *args, *region, api_name=api_name)
        assert message in str(caught.value) and "Traceback" not in str(caught.value)
    _still_serving(c, world)


def test_the_when_view_ranks_each_stretch_of_the_attributed_query_as_the_library_does(server, world):
    """/when splits the current query into N consecutive stretches and ranks each (its columns are the library's
    segments.attribute_segments, in order); before any attribution it says what to do."""
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    from motive_core.models import load_model
    from motive_core.query import Attributor
    from motive_core.segments import attribute_segments
    from motive_core.selection import Box
    from motive_core.video import read_video

    c = client(server)
    with pytest.raises(AppError, match="Attribute a query first"):
        c.predict(3, api_name="/when")
    ex = examples(world)[0]
    c.predict(handle_file(str(ex["path"])), "", "when", TOP, False, api_name="/attribute")
    table = c.predict(3, api_name="/when")
    assert len(table["headers"]) == 3 and table["headers"][0].startswith("1 · frames 0–")

    attributor = Attributor(world["index"], model=load_model(world["model"], device="cpu"))
    prepared = attributor.featurizer.prepare(read_video(ex["path"], max_seconds=60.0, max_side=1024))
    segments = attribute_segments(attributor, prepared, 3, "", TOP)
    for column, segment in enumerate(segments):
        expected = [e["id"] for e in segment.result.positives]
        assert [row[column].split(" · ")[2] for row in table["data"]] == expected

    # a boxed, isolated query: each stretch keeps the box and hides what lies outside it, as the library does
    size = prepared.source
    box = (0.0, 0.0, size["width"] / 2, size["height"])
    c.predict(handle_file(str(ex["path"])), "", "when", TOP, False, "", *box, None, None, None, True,
              api_name="/attribute")
    table = c.predict(2, api_name="/when")
    segments = attribute_segments(attributor, prepared, 2, "", TOP, (Box(*box),), isolate=True)
    for column, segment in enumerate(segments):
        assert segment.result is not None, segment.note
        assert [row[column].split(" · ")[2] for row in table["data"]] == [e["id"] for e in segment.result.positives]


def test_the_planted_artifact_readout_names_the_artifact_and_counts_planted_tiles():
    """For a world with planted artifacts: the detector's verdict with its per-frame evidence, and the planted
    clips counted among the shown ones; a world without the label has none of it."""
    from motive_core.demo.motionshapes import ShapeSpec, render_clip
    from motive_core.demo.world import DemoRecipe
    from motive_core.ui.planted import detector_readout, has_planted, planted_count, planted_share
    from motive_core.video import Video, standardize

    g = DemoRecipe().geometry

    def model_frames(artifact: str) -> np.ndarray:
        spec = ShapeSpec("bounce", shape="circle", color="red", background="plain", size=0.12, seed=3,
                         artifact=artifact)
        return standardize(Video(frames=render_clip(spec, 32, 64), fps=16, source="rendered"), g.num_frames, g.fps,
                           g.height, g.width)

    text, figure = detector_readout(model_frames("jitter"))
    assert "the query reads as **jitter**" in text
    assert [len(trace.y) for trace in figure.data] == [g.num_frames - 3, g.num_frames - 1]  # shake, step per frame
    assert "the query reads as **clean**" in detector_readout(model_frames("none"))[0]
    clips = [{"id": "a", "labels": {"artifact": "jitter"}}, {"id": "b", "labels": {"artifact": "none"}},
             {"id": "c", "labels": {"artifact": "stutter"}}]
    assert has_planted(clips) and not has_planted([{"id": "a", "labels": {"motion": "spin"}}])
    assert planted_count(clips) == "2 of the top 3 are planted (jitter 1, stutter 1)"
    assert planted_share(clips) == "2 of 3 training clips (67%) carry a planted artifact"

"""The command line: every command's --help, --json output and bad-input paths (one line, no traceback)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from motive_core.cli import main

REPO = Path(__file__).resolve().parents[1]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code: int, err: str, pattern: str) -> None:
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    assert pattern.lower() in lines[0].lower(), lines[0]


@pytest.mark.parametrize("command", ["mask", "build-index", "query", "select", "generate"])
def test_every_command_has_help(command):
    proc = subprocess.run([sys.executable, "-m", "motive_core", command, "--help"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "--json" in proc.stdout


def test_mask_json_and_files(capsys, tmp_path, clip_folder):
    video = sorted(clip_folder.glob("*.mp4"))[0]
    code, out, _ = run(capsys, "mask", "--video", str(video), "--out", str(tmp_path / "m"), "--json")
    assert code == 0
    result = json.loads(out)
    for key in ("frames", "height", "width", "motion_mean", "motion_max", "camera_motion_score", "files"):
        assert key in result
    assert result["motion_max"] > 0.5
    assert all(Path(p).is_file() for p in result["files"].values())


def test_mask_bad_inputs(capsys, tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("hello")
    assert_one_line_error(*run(capsys, "mask", "--video", str(text), "--out", str(tmp_path / "o"))[::2], "")
    assert_one_line_error(*run(capsys, "mask", "--video", str(tmp_path / "missing.mp4"), "--out", str(tmp_path))[::2], "")
    code, out, err = run(capsys, "mask", "--video", str(text), "--out", str(tmp_path / "o"), "--json")
    assert code == 2 and "error" in json.loads(out)


def test_build_index_bad_inputs(capsys, tmp_path, tiny_demo_dir):
    assert_one_line_error(*run(capsys, "build-index", "--data", str(tmp_path / "none"), "--model", str(tiny_demo_dir),
                               "--out", str(tmp_path / "i"))[::2], "none")
    (tmp_path / "empty").mkdir()
    assert_one_line_error(*run(capsys, "build-index", "--data", str(tmp_path / "empty"), "--model", str(tiny_demo_dir),
                               "--out", str(tmp_path / "i"))[::2], "metadata.jsonl")
    assert_one_line_error(*run(capsys, "build-index", "--data", str(tmp_path / "empty"), "--model",
                               str(tmp_path / "no-model"), "--out", str(tmp_path / "i"))[::2], "no-model")
    assert_one_line_error(*run(capsys, "build-index", "--data", str(tmp_path), "--model", str(tiny_demo_dir),
                               "--out", str(tmp_path / "i"), "--proj-dim", "0")[::2], "projection dimension")


def test_query_and_select_bad_inputs(capsys, tmp_path, clip_folder):
    video = str(sorted(clip_folder.glob("*.mp4"))[0])
    assert_one_line_error(*run(capsys, "query", "--index", str(tmp_path), "--video", video)[::2], "not an attribution index")
    assert_one_line_error(*run(capsys, "select", "--index", str(tmp_path), "--videos", video, video, "--prompts", "x",
                               "--out", str(tmp_path / "s.csv"))[::2], "one prompt per video")
    assert_one_line_error(*run(capsys, "select", "--index", str(tmp_path), "--videos", video,
                               "--out", str(tmp_path / "s.txt"))[::2], ".csv or .jsonl")


def test_generate_bad_inputs(capsys, tmp_path, tiny_demo_dir):
    assert_one_line_error(*run(capsys, "generate", "--model", str(tmp_path / "nope"), "--prompt", "x",
                               "--out", str(tmp_path / "o.mp4"))[::2], "does not exist")
    assert_one_line_error(*run(capsys, "generate", "--model", str(tiny_demo_dir), "--prompt", "x", "--steps", "0",
                               "--out", str(tmp_path / "o.mp4"))[::2], "steps")


def test_generate_query_select_end_to_end(capsys, tmp_path, clip_folder, tiny_demo_dir):
    code, out, err = run(capsys, "generate", "--model", str(tiny_demo_dir), "--prompt", "a red square bouncing",
                         "--steps", "2", "--out", str(tmp_path / "gen.mp4"), "--json")
    assert code == 0, err
    assert json.loads(out)["frames"] == 8 and (tmp_path / "gen.mp4").stat().st_size > 0
    code, out, err = run(capsys, "build-index", "--data", str(clip_folder), "--model", str(tiny_demo_dir),
                         "--out", str(tmp_path / "idx"), "--proj-dim", "32", "--json")
    assert code == 0, err
    code, out, err = run(capsys, "query", "--index", str(tmp_path / "idx"), "--video", str(tmp_path / "gen.mp4"),
                         "--prompt", "a red square bouncing", "--top", "3", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert len(result["positives"]) == 3 and len(result["negatives"]) == 3
    assert {"id", "file", "caption", "score", "labels"} <= result["positives"][0].keys()
    assert "motion_max" in result["query"] and result["config"]["settings"]["proj_dim"] == 32
    videos = [str(p) for p in sorted(clip_folder.glob("*.mp4"))[:2]]
    code, out, err = run(capsys, "select", "--index", str(tmp_path / "idx"), "--videos", *videos,
                         "--fraction", "0.25", "--out", str(tmp_path / "sel.jsonl"), "--json")
    assert code == 0, err
    assert json.loads(out)["selected"] == 2
    rows = [json.loads(line) for line in (tmp_path / "sel.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and "votes" in rows[0]


def test_several_indexes_average_their_models_scores_and_must_hold_the_same_clips(capsys, tmp_path, clip_folder,
                                                                                  tiny_demo_dir, tiny_geometry):
    """``--index`` repeated: each index is read through the model it was built with and every clip's score is
    the mean of its scores (a model ensemble), for query and select; indexes of other clips, or a ``--model``
    count that is not the ``--index`` count, are refused with one line."""
    import shutil

    from conftest import write_tiny_demo

    other_model = write_tiny_demo(tmp_path / "other_model", tiny_geometry, seed=1)
    indexes = []
    for name, model in (("first", tiny_demo_dir), ("second", other_model)):
        code, _, err = run(capsys, "build-index", "--data", str(clip_folder), "--model", str(model),
                           "--out", str(tmp_path / name), "--preset", "motion", "--proj-dim", "32")
        assert code == 0, err
        indexes += ["--index", str(tmp_path / name)]
    video = str(sorted(clip_folder.glob("*.mp4"))[0])

    def scores(*index_args: str) -> tuple[dict[str, float], dict]:
        code, out, err = run(capsys, "query", *index_args, "--video", video, "--top", "8", "--json")
        assert code == 0, err
        result = json.loads(out)
        return {entry["id"]: entry["score"] for entry in result["positives"]}, result

    first, second = scores(*indexes[:2])[0], scores(*indexes[2:])[0]
    both, result = scores(*indexes)
    assert len(both) == 8 and first != second  # two different models
    assert all(abs(both[clip] - (first[clip] + second[clip]) / 2) < 1e-6 for clip in both)
    assert [config["model"]["weight_hash"] for config in result["config"]["ensemble"]] == [
        json.loads((tmp_path / name / "config.json").read_text())["vector_config"]["model"]["weight_hash"]
        for name in ("first", "second")]
    code, out, _ = run(capsys, "query", *indexes, "--video", video, "--windows", "2")
    assert code == 0 and out.splitlines()[1].startswith("scores: the mean over 2 models (motive-demo ")
    assert out.count("frames ") == 2
    code, out, err = run(capsys, "select", *indexes, "--videos", video, "--fraction", "0.25",
                         "--out", str(tmp_path / "sel.csv"), "--json")
    assert code == 0 and json.loads(out)["selected"] == 2, err

    assert_one_line_error(*run(capsys, "query", *indexes, "--model", str(other_model), "--video", video)[::2],
                          "one --model per --index")
    swapped = ("--model", str(other_model), "--model", str(tiny_demo_dir))  # each index read through the other
    code, out, err = run(capsys, "query", *indexes, *swapped, "--video", video, "--top", "8", "--json")
    assert code == 2 and "weight_hash" in err  # the models' vectors are not the indexes': refused by name
    fewer = tmp_path / "fewer_clips"
    shutil.copytree(clip_folder, fewer)
    lines = (fewer / "metadata.jsonl").read_text().splitlines()
    (fewer / "metadata.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    code, _, err = run(capsys, "build-index", "--data", str(fewer), "--model", str(other_model),
                       "--out", str(tmp_path / "fewer"), "--preset", "motion", "--proj-dim", "32")
    assert code == 0, err
    assert_one_line_error(*run(capsys, "query", *indexes[:2], "--index", str(tmp_path / "fewer"),
                               "--video", video)[::2], "the same clips")
    code, _, err = run(capsys, "build-index", "--data", str(clip_folder), "--model", str(other_model),
                       "--out", str(tmp_path / "captions"), "--preset", "paper", "--proj-dim", "32")
    assert code == 0, err
    assert_one_line_error(*run(capsys, "query", *indexes[:2], "--index", str(tmp_path / "captions"),
                               "--video", video)[::2], "differ in settings.conditioning")


def test_model_demo_names_the_checkout_s_demo_model_and_says_when_there_is_none(capsys, tmp_path, monkeypatch):
    """``--model demo`` resolves to precomputed/model; an installation without it (not editable) is told what
    to pass instead."""
    from motive_core import demo

    code, out, _ = run(capsys, "generate", "--model", "demo", "--prompt", "a red square bouncing", "--steps", "1",
                       "--out", str(tmp_path / "g.mp4"), "--json")
    assert code == 0 and json.loads(out)["frames"] == 16
    monkeypatch.setattr(demo, "DEMO_MODEL_DIR", tmp_path / "site-packages" / "precomputed" / "model")
    code, _, err = run(capsys, "generate", "--model", "demo", "--prompt", "x", "--out", str(tmp_path / "h.mp4"))
    assert_one_line_error(code, err, "pass the model folder itself")

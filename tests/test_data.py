"""Clip folders: loading, ids, labels, and a clear message for every malformed input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from motive_core.data import Clip, load_clip_folder, write_metadata
from motive_core.errors import MotiveError


def make_folder(root: Path, rows: list[dict], files: list[str] | None = None) -> Path:
    """A folder with placeholder video files (loading never decodes them) and the given metadata rows."""
    for name in files if files is not None else [row["file_name"] for row in rows]:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"video")
    write_metadata(root, rows)
    return root


def write_lines(root: Path, lines: list[str], files: tuple[str, ...] = ("a.mp4",)) -> Path:
    for name in files:
        (root / name).write_bytes(b"video")
    (root / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    return root


def test_loads_clips_in_order_with_captions_and_labels(tmp_path):
    folder = make_folder(tmp_path, [
        {"file_name": "b.mp4", "text": "a red square bouncing", "motion": "bounce", "color": "red"},
        {"file_name": "a.mp4", "text": "a blue circle sliding", "motion": "slide", "size": 3, "tags": ["x"]},
    ])
    clips = load_clip_folder(folder)
    assert [c.id for c in clips] == ["b", "a"]
    assert clips[0] == Clip(id="b", file=(folder / "b.mp4").resolve(), caption="a red square bouncing",
                            labels={"motion": "bounce", "color": "red"}, file_name="b.mp4")
    assert clips[1].labels == {"motion": "slide", "size": "3", "tags": '["x"]'}
    assert clips[1].file.is_absolute()


def test_to_dict_is_json_safe_and_keeps_the_relative_name(tmp_path):
    folder = make_folder(tmp_path, [{"file_name": "sub/a.mp4", "text": "t", "motion": "spin"}])
    record = load_clip_folder(folder)[0].to_dict()
    assert record == {"id": "a", "file": "sub/a.mp4", "caption": "t", "labels": {"motion": "spin"}}
    assert json.loads(json.dumps(record)) == record


def test_colliding_stems_fall_back_to_the_relative_path(tmp_path):
    folder = make_folder(tmp_path, [{"file_name": "x/clip.mp4", "text": ""}, {"file_name": "y/clip.mp4", "text": ""},
                                    {"file_name": "other.mp4", "text": ""}])
    assert [c.id for c in load_clip_folder(folder)] == ["x__clip.mp4", "y__clip.mp4", "other"]


def test_blank_lines_are_skipped_and_text_defaults_to_empty(tmp_path):
    folder = write_lines(tmp_path, ["", json.dumps({"file_name": "a.mp4"}), "   "])
    (clip,) = load_clip_folder(folder)
    assert clip.caption == "" and clip.labels == {}


def test_write_metadata_is_atomic_and_round_trips(tmp_path):
    rows = [{"file_name": "a.mp4", "text": "é", "motion": "roll"}]
    path = write_metadata(tmp_path / "new", rows)
    assert path == tmp_path / "new" / "metadata.jsonl"
    assert [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] == rows
    write_metadata(tmp_path / "new", rows * 2)
    assert len(path.read_text().splitlines()) == 2
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == ["metadata.jsonl"]


def expect_error(folder: Path, *fragments: str) -> None:
    with pytest.raises(MotiveError) as info:
        load_clip_folder(folder)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_missing_folder(tmp_path):
    expect_error(tmp_path / "nope", "nope", "does not exist")


def test_a_file_is_not_a_folder(tmp_path):
    (tmp_path / "f.txt").write_text("x")
    expect_error(tmp_path / "f.txt", "is not a folder")


def test_empty_folder(tmp_path):
    expect_error(tmp_path, str(tmp_path), "is empty", "metadata.jsonl")


def test_missing_metadata_says_what_is_expected(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"video")
    expect_error(tmp_path, f"{tmp_path}/metadata.jsonl", "one JSON object per line: file_name, text")


def test_bad_json_names_the_line(tmp_path):
    write_lines(tmp_path, [json.dumps({"file_name": "a.mp4"}), "{not json"])
    expect_error(tmp_path, "metadata.jsonl, line 2", "not valid JSON")


def test_a_line_that_is_not_an_object(tmp_path):
    write_lines(tmp_path, ['["a.mp4"]'])
    expect_error(tmp_path, "line 1", "expected a JSON object")


def test_missing_file_name(tmp_path):
    write_lines(tmp_path, [json.dumps({"file_name": "a.mp4"}), json.dumps({"text": "no file"})])
    expect_error(tmp_path, "line 2", "missing 'file_name'")


@pytest.mark.parametrize("name", ["/etc/passwd", "../a.mp4"])
def test_file_name_must_stay_inside_the_folder(tmp_path, name):
    write_lines(tmp_path, [json.dumps({"file_name": name})])
    expect_error(tmp_path, "line 1", "relative path inside the folder")


def test_listed_file_missing_on_disk(tmp_path):
    write_lines(tmp_path, [json.dumps({"file_name": "a.mp4"}), json.dumps({"file_name": "gone.mp4"})])
    expect_error(tmp_path, "line 2", "'gone.mp4'", "does not exist")


def test_duplicate_file_name(tmp_path):
    write_lines(tmp_path, [json.dumps({"file_name": "a.mp4"}), "", json.dumps({"file_name": "a.mp4"})])
    expect_error(tmp_path, "line 3", "duplicate file_name 'a.mp4'", "first on line 1")


def test_metadata_without_clips(tmp_path):
    write_lines(tmp_path, ["", ""])
    expect_error(tmp_path, "lists no clips")


def test_caption_must_be_text(tmp_path):
    write_lines(tmp_path, [json.dumps({"file_name": "a.mp4", "text": 5})])
    expect_error(tmp_path, "line 1", "'text' must be a string")

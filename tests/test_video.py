"""Reading, standardising and writing real video files made in tmp_path with the bundled ffmpeg."""

from __future__ import annotations

import math
import subprocess
import time

import cv2
import imageio_ffmpeg
import numpy as np
import pytest

from motive_core.errors import VideoError
from motive_core.video import (Video, probe_video, read_video, resample_frames, resample_indices,
                               resize_center_crop, standardize, write_mp4)

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
STEP = 8  # intensity step per frame index, large enough to survive H.264


def indexed_frames(count: int, height: int = 32, width: int = 48) -> np.ndarray:
    """Flat frames whose grey level encodes their index (index * STEP)."""
    levels = (np.arange(count) * STEP).astype(np.uint8)
    return np.broadcast_to(levels[:, None, None, None], (count, height, width, 3)).copy()


def decoded_indices(frames: np.ndarray) -> np.ndarray:
    return np.rint(frames.reshape(len(frames), -1).mean(axis=1) / STEP).astype(int)


def ffmpeg(*args: str) -> None:
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def lavfi_clip(path, size: str, rate: float, seconds: float) -> None:
    ffmpeg("-f", "lavfi", "-i", f"testsrc=size={size}:rate={rate}", "-t", str(seconds), "-c:v", "libx264",
           "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path))


@pytest.fixture(scope="module")
def indexed_mp4(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "indexed.mp4"
    return write_mp4(indexed_frames(30), path, fps=30)


# ----------------------------------------------------------------------------------------- read / write


def test_round_trip_keeps_count_fps_and_content(indexed_mp4):
    video = read_video(indexed_mp4)
    assert isinstance(video, Video)
    assert video.frames.shape == (30, 32, 48, 3) and video.frames.dtype == np.uint8
    assert video.fps == pytest.approx(30.0)
    assert video.duration == pytest.approx(1.0)
    assert np.array_equal(decoded_indices(video.frames), np.arange(30))


def test_probe_reads_header_only(indexed_mp4):
    info = probe_video(indexed_mp4)
    assert info == {"frames": 30, "fps": 30.0, "width": 48, "height": 32, "duration": pytest.approx(1.0)}


def test_written_mp4_is_h264_yuv420p(indexed_mp4):
    report = subprocess.run([FFMPEG, "-hide_banner", "-i", str(indexed_mp4)], capture_output=True, text=True).stderr
    assert "h264" in report and "yuv420p" in report


def test_write_scales_tiny_clips_pads_odd_sizes_and_leaves_no_temp_files(tmp_path):
    frames = np.random.default_rng(0).integers(0, 255, (4, 7, 9, 3), dtype=np.uint8)
    out = write_mp4(frames, tmp_path / "tiny.mp4", fps=8, scale=4)
    assert read_video(out).frames.shape == (4, 28, 36, 3)
    odd = write_mp4(frames, tmp_path / "odd.mp4", fps=8)
    assert read_video(odd).frames.shape == (4, 8, 10, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["odd.mp4", "tiny.mp4"]


def test_write_rejects_non_uint8(tmp_path):
    with pytest.raises(VideoError, match="uint8"):
        write_mp4(np.zeros((2, 8, 8, 3), np.float32), tmp_path / "x.mp4", fps=8)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("suffix,codec", [(".gif", []), (".avi", ["-c:v", "mjpeg"]), (".webm", ["-c:v", "libvpx"])])
def test_reads_other_containers(indexed_mp4, tmp_path, suffix, codec):
    path = tmp_path / f"clip{suffix}"
    ffmpeg("-i", str(indexed_mp4), *codec, str(path))
    video = read_video(path)
    assert video.frames.shape[1:] == (32, 48, 3)
    assert 28 <= len(video.frames) <= 34 and video.fps > 20


def test_reads_frame_folder_in_natural_order(tmp_path):
    frames = indexed_frames(12, 20, 30)
    for i, frame in enumerate(frames):
        cv2.imwrite(str(tmp_path / f"frame_{i}.png"), frame)
    video = read_video(tmp_path, fps=12)
    assert video.fps == 12 and video.frames.shape == (12, 20, 30, 3)
    assert np.array_equal(decoded_indices(video.frames), np.arange(12))
    assert probe_video(tmp_path, fps=12)["frames"] == 12


# ----------------------------------------------------------------------------------------- bad inputs


def test_missing_file(tmp_path):
    with pytest.raises(VideoError, match="not found"):
        read_video(tmp_path / "nope.mp4")


def test_empty_file(tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(VideoError, match="empty"):
        read_video(tmp_path / "empty.mp4")


def test_text_file_named_mp4(tmp_path):
    (tmp_path / "notes.mp4").write_text("this is not a video\n" * 20)
    with pytest.raises(VideoError, match="not a video"):
        read_video(tmp_path / "notes.mp4")


def test_truncated_file_is_corrupt(indexed_mp4, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(indexed_mp4.read_bytes()[:900])
    with pytest.raises(VideoError, match="corrupt|not a video"):
        read_video(broken)


def test_one_frame_clip(tmp_path):
    path = write_mp4(indexed_frames(1), tmp_path / "still.mp4", fps=16)
    with pytest.raises(VideoError, match="at least 2 frames"):
        read_video(path)


def test_empty_frame_folder(tmp_path):
    with pytest.raises(VideoError, match="no png/jpg"):
        read_video(tmp_path)


def test_over_long_clip_refused_from_probe(indexed_mp4):
    with pytest.raises(VideoError, match="over the 0.5 s limit"):
        read_video(indexed_mp4, max_seconds=0.5)


def test_ten_minute_clip_refused_fast(tmp_path):
    path = tmp_path / "long.mp4"
    lavfi_clip(path, "16x16", 1, 660)
    start = time.perf_counter()
    with pytest.raises(VideoError, match="660.0 s long"):
        read_video(path)
    assert time.perf_counter() - start < 2.0


def test_clip_without_length_in_header_is_stopped_while_decoding(tmp_path):
    path = tmp_path / "raw.h264"  # an elementary stream: no duration in its header
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=32x32:rate=30", "-t", "2", "-c:v", "libx264", "-preset", "ultrafast",
           "-f", "h264", str(path))
    assert probe_video(path)["duration"] == 0
    assert len(read_video(path).frames) == 60
    with pytest.raises(VideoError, match="longer than 1 s"):
        read_video(path, max_seconds=1)


def test_4k_clip_is_downscaled_while_decoding(tmp_path):
    path = tmp_path / "uhd.mp4"
    lavfi_clip(path, "3840x2160", 8, 0.25)
    assert probe_video(path)["width"] == 3840
    video = read_video(path, max_side=1024)
    assert video.frames.shape == (2, 576, 1024, 3)


def test_memory_budget_downscales(tmp_path):
    path = tmp_path / "budget.mp4"
    lavfi_clip(path, "640x480", 8, 0.5)
    video = read_video(path, max_bytes=4 * 320 * 240 * 3)
    assert video.frames.shape == (4, 240, 320, 3)
    with pytest.raises(VideoError, match="trim it"):
        read_video(path, max_bytes=4 * 16 * 12 * 3)


# ------------------------------------------------------------------------------------- standardisation


def test_resample_is_time_based_and_centred():
    indices, stretched = resample_indices(90, 30.0, 16, 8.0)
    assert not stretched
    # window of 15/8 s centred in 89/30 s; one target frame every 30/8 = 3.75 source frames
    assert indices.tolist() == [16, 20, 24, 28, 31, 35, 39, 43, 46, 50, 54, 58, 61, 65, 69, 73]
    assert indices[0] == 89 - indices[-1]


def test_resample_picks_frames_by_content(indexed_mp4):
    video = read_video(indexed_mp4)
    out = resample_frames(video.frames, video.fps, 9, 10.0)
    # 9 frames at 10 fps span 0.8 s = 24 source frames, centred in 29 → start 2.5 → every 3rd
    assert decoded_indices(out).tolist() == [3, 6, 9, 12, 15, 18, 21, 24, 27]


def test_resample_same_rate_takes_centre_not_first_frames():
    indices, stretched = resample_indices(100, 16.0, 81, 16.0)
    assert not stretched and indices.tolist() == list(range(10, 91))


def test_short_clip_is_spread_over_whole_source():
    indices, stretched = resample_indices(10, 16.0, 19, 16.0)
    assert stretched
    assert indices[0] == 0 and indices[-1] == 9 and np.all(np.diff(indices) >= 0)
    assert sorted(set(indices.tolist())) == list(range(10))


def test_resample_rejects_bad_rates():
    with pytest.raises(VideoError):
        resample_indices(10, 0.0, 5, 16.0)


def test_resize_center_crop_covers_and_crops():
    frames = np.zeros((2, 40, 80, 3), np.uint8)
    frames[:, :, 20:60] = 255  # a white band in the middle half
    out = resize_center_crop(frames, 20, 20)
    assert out.shape == (2, 20, 20, 3) and out.dtype == np.uint8
    assert out.min() == 255  # the crop is the centre, which is all white
    grown = resize_center_crop(frames[:, :9, :13], 30, 17)
    assert grown.shape == (2, 30, 17, 3)


def test_standardize_combines_both(indexed_mp4):
    out = standardize(read_video(indexed_mp4), num_frames=5, fps=4.0, height=16, width=16)
    assert out.shape == (5, 16, 16, 3) and out.dtype == np.uint8


# ------------------------------------------------------------------------- in-process decoder vs the ffmpeg CLI


def cli_frames(path, *output_params: str) -> np.ndarray:
    """Every frame as the ffmpeg command-line tool decodes it (the decoder this module used before PyAV)."""
    reader = imageio_ffmpeg.read_frames(str(path), output_params=list(output_params), input_params=["-nostdin"])
    w, h = next(reader)["size"]
    frames = [np.frombuffer(buffer, np.uint8).reshape(h, w, 3) for buffer in reader]
    reader.close()
    return np.stack(frames)


def mean_abs_difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


@pytest.mark.parametrize("size", ["96x64", "320x240"])
def test_frames_equal_the_ffmpeg_cli_within_codec_tolerance(tmp_path, size):
    path = tmp_path / "testsrc.mp4"
    lavfi_clip(path, size, 24, 1)
    ours, reference = read_video(path).frames, cli_frames(path)
    assert ours.shape == reference.shape
    # same decoder; only the YUV→RGB conversion's rounding and chroma filter may differ
    assert mean_abs_difference(ours, reference) < 2.0
    assert np.percentile(np.abs(ours.astype(np.int16) - reference), 99) <= 24


def test_downscaled_frames_equal_the_ffmpeg_cli_area_scaling(tmp_path):
    path = tmp_path / "big.mp4"
    lavfi_clip(path, "640x480", 8, 0.5)
    ours = read_video(path, max_side=320).frames
    reference = cli_frames(path, "-vf", "scale=320:240:flags=area")
    assert ours.shape == reference.shape == (4, 240, 320, 3)
    assert mean_abs_difference(ours, reference) < 2.0


@pytest.mark.parametrize("rotation", [90, -90, 180])
def test_rotated_clips_are_shown_upright_like_the_ffmpeg_cli(tmp_path, rotation):
    plain = tmp_path / "plain.mp4"
    lavfi_clip(plain, "64x48", 10, 0.5)
    rotated = tmp_path / "rotated.mp4"
    ffmpeg("-display_rotation", str(rotation), "-i", str(plain), "-c", "copy", str(rotated))
    ours, reference = read_video(rotated).frames, cli_frames(rotated)
    expected_shape = (5, 48, 64, 3) if rotation == 180 else (5, 64, 48, 3)
    assert ours.shape == reference.shape == expected_shape
    info = probe_video(rotated)
    assert (info["height"], info["width"]) == expected_shape[1:3]
    assert mean_abs_difference(ours, reference) < 2.0


# ---------------------------------------------------------------------------------------------- windows


@pytest.mark.parametrize("start,duration,expected", [(0.3, 0.4, range(9, 21)), (0.0, 0.5, range(0, 15)),
                                                     (0.5, None, range(15, 30)), (0.95, 5.0, range(29, 30)),
                                                     (0.31, 0.1, range(10, 13))])
def test_window_equals_the_slice_of_a_full_read(indexed_mp4, start, duration, expected):
    full = read_video(indexed_mp4)
    if len(expected) < 2:
        with pytest.raises(VideoError, match="window .* only 1 frame"):
            read_video(indexed_mp4, start=start, duration=duration)
        return
    window = read_video(indexed_mp4, start=start, duration=duration)
    assert np.array_equal(window.frames, full.frames[expected.start:expected.stop])
    assert window.fps == full.fps and window.start == pytest.approx(expected.start / 30)


def test_window_of_a_long_clip_seeks_instead_of_decoding_everything(tmp_path):
    path = tmp_path / "long.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=8", "-t", "3600", "-c:v", "libx264", "-preset",
           "ultrafast", "-g", "80", "-pix_fmt", "yuv420p", str(path))
    with pytest.raises(VideoError, match="3600.0 s long"):
        read_video(path)  # the whole clip is over the limit
    begin = time.perf_counter()
    window = read_video(path, start=3000.25, duration=2.0)
    elapsed = time.perf_counter() - begin
    assert len(window.frames) == 16 and window.start == pytest.approx(3000.25)
    assert elapsed < 2.0  # decoding all 28 800 frames takes far longer
    reference = cli_frames(path, "-ss", "3000.25", "-frames:v", "16")
    assert mean_abs_difference(window.frames, reference) < 2.0


def test_window_of_a_frame_folder(tmp_path):
    for i, frame in enumerate(indexed_frames(12, 20, 30)):
        cv2.imwrite(str(tmp_path / f"frame_{i}.png"), frame)
    window = read_video(tmp_path, fps=4, start=1.0, duration=1.5)
    assert decoded_indices(window.frames).tolist() == [4, 5, 6, 7, 8, 9] and window.start == 1.0


def test_window_of_an_unseekable_stream_decodes_from_the_start(tmp_path):
    path = tmp_path / "raw.h264"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=32x32:rate=30", "-t", "2", "-c:v", "libx264", "-preset", "ultrafast",
           "-f", "h264", str(path))
    full = read_video(path)
    window = read_video(path, start=1.0, duration=0.5)
    first, stop = math.ceil(1.0 * full.fps), math.ceil(1.5 * full.fps)  # frame i is at i / fps
    assert np.array_equal(window.frames, full.frames[first:stop])


def test_bad_windows_are_refused_by_name(indexed_mp4):
    with pytest.raises(VideoError, match="start .* ≥ 0"):
        read_video(indexed_mp4, start=-1.0)
    with pytest.raises(VideoError, match="duration .* positive"):
        read_video(indexed_mp4, duration=0.0)
    with pytest.raises(VideoError, match="starts at 5 s but the clip is only 1.00 s long"):
        read_video(indexed_mp4, start=5.0)
    with pytest.raises(VideoError, match="window .* over the 0.2 s limit"):
        read_video(indexed_mp4, start=0.1, duration=0.5, max_seconds=0.2)


def test_audio_only_file_is_refused_by_name(tmp_path):
    path = tmp_path / "voice.mp4"
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-c:a", "aac", str(path))
    with pytest.raises(VideoError, match="no video stream"):
        read_video(path)
    with pytest.raises(VideoError, match="no video stream"):
        probe_video(path)


def test_variable_rate_clip_is_put_on_a_constant_grid_like_the_ffmpeg_cli(tmp_path):
    """Ten frames 0.1 s apart, then frames 0.2 s apart: read on a 10 fps grid, each step the nearest frame."""
    path = tmp_path / "vfr.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=10", "-t", "3", "-vf",
           "setpts='if(lt(N,10),N,10+(N-10)*2)/10/TB'", "-fps_mode", "vfr", "-c:v", "libx264", "-pix_fmt",
           "yuv420p", str(path))
    video, reference = read_video(path), cli_frames(path)
    assert video.fps == pytest.approx(10.0)
    assert abs(len(video.frames) - len(reference)) <= 1 and len(video.frames) >= 26
    same = [np.array_equal(ours, theirs) for ours, theirs in zip(video.frames, reference)]
    assert sum(same) >= len(same) - 4  # only grid steps half-way between two frames may pick the other one

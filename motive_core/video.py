"""Read, standardise, resize and write video clips (paper §4.4: every clip to one length and rate).

Decoding runs in process through PyAV (FFmpeg's libraries, bundled in its wheel): no process is started
per clip, and sizes, rates and durations come from the container's metadata. Writing mp4 goes through the
ffmpeg binary bundled with ``imageio-ffmpeg`` (see :func:`_encode` for why). Nothing depends on a system
ffmpeg and nothing is downloaded. Every bad input raises :class:`VideoError` with one
sentence saying what was wrong and what to do.

Size policy: a clip whose long side exceeds ``max_side``, or whose decoded frames would exceed
``max_bytes``, is *downscaled while decoding* (area averaging), so a 4K or long clip is read with bounded
memory instead of being refused; only a clip that would have to shrink below ``MIN_DECODE_SIDE`` pixels
to fit is refused. A long clip can also be read one window at a time (``start``/``duration``), which
seeks and decodes only that window.
"""

from __future__ import annotations

import math
import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import av
import cv2
import imageio_ffmpeg
import numpy as np

from motive_core.errors import VideoError
from motive_core.files import atomic_path

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
VIDEO_HINT = "upload an mp4, webm, mov, avi, mkv or gif clip (or a folder of png/jpg frames)"
MIN_DECODE_SIDE = 32
DEFAULT_MAX_BYTES = 2 * 1024**3
_TIME_EPS = 1e-6  # seconds: timestamps this close to a window edge count as on it
_FRAME_THREADS_FROM = 640 * 360  # pixels a frame from which decoding uses frame threads


@dataclass
class Video:
    """Decoded RGB frames (T,H,W,3) uint8 at ``fps``; ``source`` names where they came from.

    ``start`` is the time of the first frame in the source, in seconds (non-zero for a window read).
    """

    frames: np.ndarray
    fps: float
    source: str
    start: float = 0.0

    @property
    def duration(self) -> float:
        """Seconds covered by the frames (each frame lasts 1/fps)."""
        return len(self.frames) / self.fps


# ----------------------------------------------------------------------------------------------- probe


def probe_video(path: str | Path, fps: float = 16.0) -> dict:
    """Frame count, fps, width, height and duration (s) without decoding the clip.

    Videos are probed from their container metadata (plus the first frame, for its display rotation);
    a frame folder is counted and its first image read. ``fps`` is used only for frame folders, which
    carry no rate of their own. ``duration`` is 0 when the container states no length (a raw stream).
    """
    info, _ = _probe(_existing(path), fps)
    return info


@dataclass(frozen=True)
class _Stored:
    """How frames are stored: quarter turns (counter-clockwise) they need for display, and the stream's
    base rate (FFmpeg's "tbr"), the grid a variable-rate clip is put on."""

    rotation: int = 0
    base_fps: float = 0.0


def _probe(path: Path, fps: float) -> tuple[dict, _Stored]:
    """:func:`probe_video`'s answer and how the frames are stored."""
    if path.is_dir():
        files = _frame_files(path)
        first = _read_image(files[0])
        height, width = first.shape[:2]
        return {"frames": len(files), "fps": float(fps), "width": width, "height": height,
                "duration": len(files) / fps}, _Stored()
    with _open_container(path) as container:
        return _probe_stream(container, _video_stream(container, path.name), path.name)


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise VideoError(f"Video not found at {path}: check the path, or upload the clip again.")
    if path.is_file() and path.stat().st_size == 0:
        raise VideoError(f"{path.name} is empty (0 bytes): the upload or export did not finish; "
                         "export the clip again and re-upload it.")
    return path


@contextmanager
def _open_container(path: Path) -> Iterator[av.container.InputContainer]:
    """The file opened by PyAV for reading; a file FFmpeg cannot parse is refused by name."""
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.error.FFmpegError, OSError) as err:
        reason = getattr(err, "strerror", None) or str(err)
        raise VideoError(f"{path.name} is not a video ffmpeg can read ({reason}): it is not a video file or it "
                         f"is damaged; {VIDEO_HINT}.") from err
    try:
        yield container
    finally:
        container.close()


def _video_stream(container: av.container.InputContainer, name: str) -> av.video.stream.VideoStream:
    if not container.streams.video:
        raise VideoError(f"{name} contains no video stream (audio only, or a non-video file); {VIDEO_HINT}.")
    return container.streams.video[0]


def _first_frame_rotation(container: av.container.InputContainer, stream) -> int:
    """Counter-clockwise quarter turns the display matrix asks for (0 when the first frame won't decode)."""
    try:
        frame = next(container.decode(stream), None)
    except av.error.FFmpegError:
        return 0
    return 0 if frame is None else round((frame.rotation or 0) / 90) % 4


def _probe_stream(container: av.container.InputContainer, stream, name: str) -> tuple[dict, _Stored]:
    """Display size, rate, duration and frame count from the stream and container headers."""
    width, height = stream.codec_context.width, stream.codec_context.height
    if not width or not height:
        raise VideoError(f"{name} has a video stream of unknown size: the file is probably damaged; "
                         "re-export it as mp4 (H.264).")
    rate = stream.average_rate or stream.base_rate or stream.guessed_rate
    fps = float(rate) if rate else 0.0
    if container.duration is not None and container.duration > 0:
        duration = container.duration / av.time_base
    elif stream.duration and stream.time_base:
        duration = float(stream.duration * stream.time_base)
    else:
        duration = 0.0
    frames = stream.frames or (int(round(duration * fps)) if duration > 0 and fps > 0 else 0)
    rotation = _first_frame_rotation(container, stream)
    if rotation % 2:
        width, height = height, width
    info = {"frames": int(frames), "fps": fps, "width": width, "height": height, "duration": duration}
    return info, _Stored(rotation, float(stream.base_rate or 0.0))


# ------------------------------------------------------------------------------------------------ read


def read_video(path: str | Path, max_seconds: float = 600.0, max_side: int = 4096, fps: float = 16.0,
               max_bytes: int = DEFAULT_MAX_BYTES, start: float = 0.0, duration: float | None = None) -> Video:
    """Decode a clip (mp4/avi/webm/mov/mkv/gif, or a folder of png/jpg frames sorted by name) to RGB.

    Window: ``start`` and ``duration`` (seconds from the clip's first frame) select the frames whose
    timestamps t satisfy start ≤ t < start + duration (to the clip's end when ``duration`` is None).
    The reader seeks to the key frame before ``start`` and stops after the window, so a window of a
    long clip costs about the window's decode, not the clip's; its frames equal the same slice of a
    full read, and ``Video.start`` is the first frame's time. Frames come at one constant rate
    ``Video.fps`` (a variable-rate clip is put on a grid at its base rate first).

    Refuses, from the header and before decoding, a clip (or window) longer than ``max_seconds``.
    Frames larger than ``max_side`` (or too many bytes in all) are downscaled during decoding; see the
    module docstring. ``fps`` is the rate given to a frame folder (and to a file whose header states none).
    """
    path = _existing(path)
    _check_window(start, duration, path.name)
    info, stored = _probe(path, fps)
    span = _window_span(info, start, duration, path.name)
    if span > max_seconds:
        what = f"{path.name} is {info['duration']:.1f} s long" if duration is None and start == 0 else \
            f"The window of {path.name} from {start:g} s is {span:.1f} s long"
        raise VideoError(f"{what}, over the {max_seconds:g} s limit: trim it to the part with the motion you "
                         "care about (read a window with start/duration), or raise max_seconds.")
    rate = info["fps"] or float(fps)
    window_frames = math.ceil(span * rate) if span > 0 else info["frames"]
    width, height = _decode_size({**info, "frames": window_frames}, max_side, max_bytes, path.name)
    if path.is_dir():
        frames, first = _read_folder(path, width, height, start, duration, float(fps))
        video = Video(frames, float(fps), str(path), first)
    else:
        limit = min(math.ceil(max_seconds * (info["fps"] or 60.0)) + 2, max_bytes * 5 // 4 // (width * height * 3) + 2)
        frames, first, rate = _decode_file(path, info, stored, (width, height), (start, duration), limit,
                                           max_seconds)
        video = Video(frames, rate or float(fps), str(path), first)
    _check_frame_count(len(video.frames), path.name, windowed=start > 0 or duration is not None)
    return video


def _check_window(start: float, duration: float | None, name: str) -> None:
    if not math.isfinite(start) or start < 0:
        raise VideoError(f"The window start for {name} must be a number of seconds ≥ 0, got {start}.")
    if duration is not None and (not math.isfinite(duration) or duration <= 0):
        raise VideoError(f"The window duration for {name} must be a positive number of seconds, got {duration}.")


def _window_span(info: dict, start: float, duration: float | None, name: str) -> float:
    """Seconds the read covers (0 when unknown: a raw stream read to its end)."""
    length = info["duration"]
    if length > 0 and start >= length:
        raise VideoError(f"The window of {name} starts at {start:g} s but the clip is only {length:.2f} s long: "
                         "choose a start inside the clip.")
    if length <= 0:
        return duration or 0.0
    return min(length - start, duration) if duration is not None else length - start


def _decode_size(info: dict, max_side: int, max_bytes: int, name: str) -> tuple[int, int]:
    """(width, height) to decode at: the source size, shrunk to fit ``max_side`` and ``max_bytes``."""
    width, height = info["width"], info["height"]
    scale = min(1.0, max_side / max(width, height))
    total = max(info["frames"], 1) * width * height * 3 * scale * scale
    over_budget = total > max_bytes
    if over_budget:
        scale *= math.sqrt(max_bytes / total)
    if scale >= 1.0:
        return width, height
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    if over_budget and min(new_w, new_h) < MIN_DECODE_SIDE:
        raise VideoError(f"{name} ({width}x{height}, about {info['frames']} frames) would have to shrink to "
                         f"{new_w}x{new_h} to fit in memory: trim it to a shorter clip and try again.")
    return new_w, new_h


def _decode_file(path: Path, info: dict, stored: _Stored, size: tuple[int, int],
                 window: tuple[float, float | None], limit: int,
                 max_seconds: float) -> tuple[np.ndarray, float, float]:
    """Decode the frames inside the window at size (width, height), displayed upright, in order.

    Returns (frames, time of the first, their rate). A variable-rate clip is put on a constant grid (see
    :func:`_constant_rate`). A header can lie or give no length, so decoding also stops past ``limit``
    frames (at the probed rate, or 60 fps when unknown).
    """
    (width, height), (start, duration), rotation = size, window, stored.rotation
    end = math.inf if duration is None else start + duration
    source_size = (info["height"], info["width"]) if rotation % 2 else (info["width"], info["height"])
    target = (height, width) if rotation % 2 else (width, height)
    frames: list[np.ndarray] = []
    times: list[float] = []
    try:
        for t, frame in _timed_frames(path, start, info["fps"] or 60.0):
            if t < start - _TIME_EPS:
                continue
            if t >= end - _TIME_EPS:
                break
            if target == source_size:
                image = frame.to_ndarray(format="rgb24")
            else:
                image = frame.to_ndarray(width=target[0], height=target[1], format="rgb24", interpolation="AREA")
            frames.append(np.rot90(image, rotation) if rotation else image)
            times.append(t)
            if len(frames) > limit:
                raise VideoError(f"{path.name} runs past {limit} frames, more than its header announced: "
                                 f"it is longer than {max_seconds:g} s or too large to hold in memory; "
                                 "trim it and try again.")
    except av.error.FFmpegError as err:
        if not frames:
            raise VideoError(f"{path.name} looks like a video but no frame could be decoded: the file is "
                             "corrupt or truncated; re-export or re-download it.") from err
    if not frames:
        return np.zeros((0, height, width, 3), np.uint8), start, info["fps"]
    indices, rate = _constant_rate(np.asarray(times), info["fps"], stored.base_fps)
    return np.ascontiguousarray(np.stack([frames[i] for i in indices])), times[0], rate


def _constant_rate(times: np.ndarray, fps: float, base_fps: float) -> tuple[np.ndarray, float]:
    """Which decoded frame to show at each step of a constant-rate grid, and the grid's rate.

    A clip whose frames sit on the k/fps grid (to half a frame) keeps every frame at ``fps``. A
    variable-rate clip is put on a grid at its base rate (or at ``fps`` when the base rate is not between
    one and two times it, e.g. a millisecond time base), each step showing the frame with the nearest
    timestamp (as FFmpeg's constant-rate output does), so the time-based resampling stays accurate.
    """
    if len(times) < 2 or fps <= 0 or np.all(np.abs(times - times[0] - np.arange(len(times)) / fps) < 0.5 / fps):
        return np.arange(len(times)), fps
    rate = base_fps if fps <= base_fps <= 2 * fps else fps
    grid = times[0] + np.arange(int(np.floor((times[-1] - times[0]) * rate + 0.5)) + 1) / rate
    after = np.clip(np.searchsorted(times, grid), 1, len(times) - 1)
    nearest = np.where(grid - times[after - 1] <= times[after] - grid, after - 1, after)
    return nearest, rate


def _timed_frames(path: Path, start: float, rate: float) -> Iterator[tuple[float, av.VideoFrame]]:
    """(seconds from the first frame, frame) in decode order, from the key frame at or before ``start``.

    Seeks when ``start`` > 0; when the container cannot seek, or lands after ``start``, or its frames
    carry no timestamps, it decodes from the beginning instead. Untimed frames are timed by count at ``rate``.
    """
    if start > 0:
        with _open_container(path) as container:
            stream = _video_stream(container, path.name)
            origin = _origin(stream)
            if _seek(container, stream, start + origin):
                decoded = _decode(container, stream)
                first = next(decoded, None)
                if first is not None and first.time is not None and first.time - origin <= start + _TIME_EPS:
                    yield first.time - origin, first
                    for frame in decoded:
                        yield (frame.time - origin if frame.time is not None else math.inf), frame
                    return
    with _open_container(path) as container:
        stream = _video_stream(container, path.name)
        origin = _origin(stream)
        for count, frame in enumerate(_decode(container, stream)):
            yield (frame.time - origin if frame.time is not None else count / rate), frame


def _decode(container: av.container.InputContainer, stream) -> Iterator[av.VideoFrame]:
    """Frames of ``stream``; frame-parallel threads only for large frames (for tiny clips, starting them costs more)."""
    if stream.codec_context.width * stream.codec_context.height >= _FRAME_THREADS_FROM:
        stream.thread_type = "AUTO"
    return container.decode(stream)


def _origin(stream) -> float:
    """The stream's start time in seconds (frame times are counted from it)."""
    return float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0


def _seek(container: av.container.InputContainer, stream, seconds: float) -> bool:
    """Seek to the key frame at or before ``seconds``; False when the container cannot."""
    try:
        container.seek(int(seconds / stream.time_base), stream=stream, backward=True)
    except (av.error.FFmpegError, OverflowError, ZeroDivisionError, TypeError):
        return False
    return True


def _check_frame_count(count: int, name: str, windowed: bool = False) -> None:
    where = f"The window read from {name}" if windowed else name
    if count == 0:
        raise VideoError(f"{where} has no decodable frames: the file is corrupt or truncated"
                         f"{' or the window holds no frame' if windowed else ''}; re-export or re-download it.")
    if count == 1:
        raise VideoError(f"{where} has only 1 frame, and we need at least 2 frames to see motion: "
                         f"{'widen the window' if windowed else 'upload a video clip rather than a still image'}.")


def _natural_key(path: Path) -> list:
    """Sort key so that frame_2 comes before frame_10."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def _frame_files(folder: Path) -> list[Path]:
    files = sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()),
                   key=_natural_key)
    if not files:
        raise VideoError(f"The folder {folder} holds no png/jpg frames: put the frames there as images "
                         "named in playback order (e.g. 0001.png, 0002.png).")
    return files


def _read_image(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise VideoError(f"The frame {path.name} could not be read as an image: it is damaged or not an "
                         "image; replace or remove it.")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _read_folder(folder: Path, width: int, height: int, start: float = 0.0, duration: float | None = None,
                 fps: float = 16.0) -> tuple[np.ndarray, float]:
    """The frames of a folder inside the window (frame i at i/fps), read and sized; returns (frames, first time)."""
    files = _frame_files(folder)
    first = max(0, math.ceil(start * fps - _TIME_EPS * fps))
    last = len(files) if duration is None else min(len(files), math.ceil((start + duration) * fps - _TIME_EPS * fps))
    frames = []
    for file in files[first:last]:
        image = _read_image(file)
        if len(frames) == 0:
            size = image.shape[:2]
        elif image.shape[:2] != size:
            raise VideoError(f"The frame {file.name} is {image.shape[1]}x{image.shape[0]} but the first frame "
                             f"is {size[1]}x{size[0]}: all frames of a clip must have the same size.")
        if (image.shape[1], image.shape[0]) != (width, height):
            image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        frames.append(image)
    stacked = np.stack(frames) if frames else np.zeros((0, height, width, 3), np.uint8)
    return stacked, first / fps


# -------------------------------------------------------------------------------------- standardisation


def resample_indices(num_source: int, src_fps: float, num_frames: int, fps: float) -> tuple[np.ndarray, bool]:
    """Source frame index for each of ``num_frames`` target frames at ``fps`` (time-based, paper §4.4).

    Target times are k/fps inside a window of the same span centred in the source clip; each takes the
    source frame whose timestamp i/src_fps is nearest. When the source spans less time than the window,
    the samples are spread uniformly over the whole source instead (first to last frame), which slows
    playback down; the returned flag is True in that case ("stretched").
    """
    if num_source < 1 or num_frames < 1 or src_fps <= 0 or fps <= 0:
        raise VideoError(f"Cannot resample {num_source} frames at {src_fps} fps to {num_frames} frames at "
                         f"{fps} fps: frame counts and rates must be positive.")
    source_span = (num_source - 1) / src_fps
    target_span = (num_frames - 1) / fps
    if source_span + 1e-9 < target_span:
        positions = np.arange(num_frames) * ((num_source - 1) / max(num_frames - 1, 1))
        stretched = True
    else:
        start = (source_span - target_span) / 2
        positions = (start + np.arange(num_frames) / fps) * src_fps
        stretched = False
    indices = np.floor(positions + 0.5 + 1e-9).astype(np.int64)
    return np.clip(indices, 0, num_source - 1), stretched


def resample_frames(frames: np.ndarray, src_fps: float, num_frames: int, fps: float) -> np.ndarray:
    """Exactly ``num_frames`` frames at ``fps``, chosen by time (see :func:`resample_indices`); never "first N"."""
    indices, _ = resample_indices(len(frames), src_fps, num_frames, fps)
    return frames[indices]


def resize_center_crop(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """Scale (T,H,W,3) frames to cover height x width, keeping the aspect ratio, then crop the centre.

    Area interpolation when shrinking (no aliasing), bilinear when growing.
    """
    src_h, src_w = frames.shape[1:3]
    if (src_h, src_w) == (height, width):
        return np.ascontiguousarray(frames)
    scale = max(height / src_h, width / src_w)
    new_h, new_w = max(height, math.ceil(src_h * scale - 1e-6)), max(width, math.ceil(src_w * scale - 1e-6))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    top, left = (new_h - height) // 2, (new_w - width) // 2
    out = np.empty((len(frames), height, width, 3), np.uint8)
    for i, frame in enumerate(frames):
        resized = cv2.resize(frame, (new_w, new_h), interpolation=interpolation)
        out[i] = resized[top:top + height, left:left + width]
    return out


def standardize(video: Video, num_frames: int, fps: float, height: int, width: int) -> np.ndarray:
    """The clip as exactly num_frames x height x width RGB at fps: time-based resample, then resize-crop."""
    return resize_center_crop(resample_frames(video.frames, video.fps, num_frames, fps), height, width)


# ----------------------------------------------------------------------------------------------- write


def write_mp4(frames: np.ndarray, path: str | Path, fps: float, scale: int = 1) -> Path:
    """Write browser-playable H.264 (yuv420p, faststart) mp4, atomically (temp file + rename).

    ``scale`` enlarges each pixel to scale x scale (nearest neighbour) so tiny demo clips stay legible;
    odd sizes are padded by one edge pixel to the even size yuv420p needs.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise VideoError(f"Cannot write {frames.shape} {frames.dtype} frames as mp4: expected uint8 (T,H,W,3) "
                         "with at least one frame.")
    if scale > 1:
        frames = frames.repeat(scale, axis=1).repeat(scale, axis=2)
    pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
    if pad_h or pad_w:
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    path = Path(path)
    with atomic_path(path) as temp:
        _encode(frames, str(temp), fps)
    return path


def _encode(frames: np.ndarray, path: str, fps: float) -> None:
    """H.264 (libx264, CRF 18, veryfast), yuv420p, moov atom first (faststart), by the bundled ffmpeg tool.

    Encoding stays in a subprocess: PyAV's in-process x264 gave different bytes for the same frames once
    the process had run torch, which broke the bit-identical demo rebuild; a fresh ffmpeg process does not.
    """
    height, width = frames.shape[1:3]
    writer = imageio_ffmpeg.write_frames(
        path, (width, height), fps=float(fps), codec="libx264", pix_fmt_out="yuv420p", quality=None,
        macro_block_size=1, output_params=["-crf", "18", "-preset", "veryfast", "-movflags", "+faststart"])
    try:
        writer.send(None)
        for frame in frames:
            writer.send(np.ascontiguousarray(frame))
    except (OSError, RuntimeError) as err:
        raise VideoError(f"Writing {Path(path).name} failed ({err}): check there is disk space and the folder "
                         "is writable.") from err
    finally:
        writer.close()

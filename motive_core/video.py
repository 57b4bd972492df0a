"""Read, standardise, resize and write video clips (paper §4.4: every clip to one length and rate).

Decoding goes through the ffmpeg binary bundled with ``imageio-ffmpeg``, so nothing depends on a system
ffmpeg and nothing is downloaded. Every bad input raises :class:`VideoError` with one sentence saying what
was wrong and what to do.

Size policy: a clip whose long side exceeds ``max_side``, or whose decoded frames would exceed
``max_bytes``, is *downscaled while decoding* (ffmpeg's scale filter, area averaging), so a 4K or long
clip is read with bounded memory instead of being refused; only a clip that would have to shrink below
``MIN_DECODE_SIDE`` pixels to fit is refused.
"""

from __future__ import annotations

import logging
import math
import os
import re
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import imageio_ffmpeg
import numpy as np

from motive_core.errors import VideoError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
VIDEO_HINT = "upload an mp4, webm, mov, avi, mkv or gif clip (or a folder of png/jpg frames)"
MIN_DECODE_SIDE = 32
DEFAULT_MAX_BYTES = 2 * 1024**3


@dataclass
class Video:
    """Decoded RGB frames (T,H,W,3) uint8 at ``fps``; ``source`` names where they came from."""

    frames: np.ndarray
    fps: float
    source: str

    @property
    def duration(self) -> float:
        """Seconds covered by the frames (each frame lasts 1/fps)."""
        return len(self.frames) / self.fps


# ----------------------------------------------------------------------------------------------- probe


def probe_video(path: str | Path, fps: float = 16.0) -> dict:
    """Frame-count estimate, fps, width, height and duration without decoding the clip.

    Videos are probed with ``ffmpeg -i`` (header only); a frame folder is counted and its first image
    read. ``fps`` is used only for frame folders, which carry no rate of their own.
    """
    path = _existing(path)
    if path.is_dir():
        files = _frame_files(path)
        first = _read_image(files[0])
        height, width = first.shape[:2]
        return {"frames": len(files), "fps": float(fps), "width": width, "height": height,
                "duration": len(files) / fps}
    return _probe_file(path)


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise VideoError(f"Video not found at {path}: check the path, or upload the clip again.")
    if path.is_file() and path.stat().st_size == 0:
        raise VideoError(f"{path.name} is empty (0 bytes): the upload or export did not finish; "
                         "export the clip again and re-upload it.")
    return path


def _probe_file(path: Path) -> dict:
    try:
        result = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)],
                                capture_output=True, text=True, errors="replace", timeout=60)
    except subprocess.TimeoutExpired as err:
        raise VideoError(f"{path.name} could not be probed within 60 s: the file is probably damaged; "
                         "re-export it as mp4 (H.264).") from err
    return _parse_probe(result.stderr, path.name)


def _parse_probe(text: str, name: str) -> dict:
    """Pull duration, fps and display size out of ffmpeg's ``-i`` report."""
    if "Error opening input" in text or "Invalid data found" in text:
        match = re.search(r"Error opening input[^:]*: (.+)", text)
        reason = match.group(1).strip() if match else text.strip().splitlines()[-1]
        raise VideoError(f"{name} is not a video ffmpeg can read ({reason}): it is not a video file or it is "
                         f"damaged; {VIDEO_HINT}.")
    video_lines = [line for line in text.splitlines() if re.search(r"Stream #\S+.*: Video: ", line)]
    if not video_lines:
        raise VideoError(f"{name} contains no video stream (audio only, or a non-video file); {VIDEO_HINT}.")
    line = video_lines[0]
    size = re.search(r"[\s,](\d+)x(\d+)[\s,\[]", line + " ")
    if size is None:
        raise VideoError(f"{name} has a video stream of unknown size: the file is probably damaged; "
                         "re-export it as mp4 (H.264).")
    width, height = int(size.group(1)), int(size.group(2))
    rotation = re.search(r"rotation of (-?[\d.]+) degrees", text)
    if rotation and round(abs(float(rotation.group(1)))) % 180 == 90:
        width, height = height, width
    fps_match = re.search(r"([\d.]+) fps", line) or re.search(r"([\d.]+) tbr", line)
    fps = float(fps_match.group(1)) if fps_match else 0.0
    duration_match = re.search(r"Duration: (\d+):(\d+):([\d.]+)", text)
    duration = 0.0
    if duration_match:
        h, m, s = duration_match.groups()
        duration = int(h) * 3600 + int(m) * 60 + float(s)
    frames = int(round(duration * fps)) if duration > 0 and fps > 0 else 0
    return {"frames": frames, "fps": fps, "width": width, "height": height, "duration": duration}


# ------------------------------------------------------------------------------------------------ read


def read_video(path: str | Path, max_seconds: float = 600.0, max_side: int = 4096, fps: float = 16.0,
               max_bytes: int = DEFAULT_MAX_BYTES) -> Video:
    """Decode a clip (mp4/avi/webm/mov/mkv/gif, or a folder of png/jpg frames sorted by name) to RGB.

    Refuses clips longer than ``max_seconds`` from the probe, before decoding. Frames larger than
    ``max_side`` (or too many bytes in all) are downscaled during decoding; see the module docstring.
    ``fps`` is the rate given to a frame folder (and to a file whose header states none).
    """
    path = _existing(path)
    info = probe_video(path, fps=fps)
    if info["duration"] > max_seconds:
        raise VideoError(f"{path.name} is {info['duration']:.1f} s long, over the {max_seconds:g} s limit: "
                         "trim it to the part with the motion you care about, or raise max_seconds.")
    width, height = _decode_size(info, max_side, max_bytes, path.name)
    if path.is_dir():
        frames = _read_folder(path, width, height)
        video = Video(frames, float(fps), str(path))
    else:
        frames = _decode_file(path, info, width, height, max_seconds, max_bytes)
        video = Video(frames, info["fps"] or float(fps), str(path))
    _check_frame_count(len(video.frames), path.name)
    return video


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


@contextmanager
def _quiet_imageio_ffmpeg() -> Iterator[None]:
    """Silence imageio-ffmpeg's warning that the decoded size differs from the source (we asked for it)."""
    logger = logging.getLogger("imageio_ffmpeg")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _decode_file(path: Path, info: dict, width: int, height: int, max_seconds: float,
                 max_bytes: int) -> np.ndarray:
    """Decode every stored frame at (width, height), in order (no frames duplicated or dropped).

    A header can lie or give no length, so decoding also stops past max_seconds (at the probed rate, or
    60 fps when unknown) or past 1.25 x max_bytes.
    """
    resize = (width, height) != (info["width"], info["height"])
    output = ["-vf", f"scale={width}:{height}:flags=area"] if resize else []
    limit = min(math.ceil(max_seconds * (info["fps"] or 60.0)) + 2, max_bytes * 5 // 4 // (width * height * 3) + 2)
    frames = []
    try:
        with _quiet_imageio_ffmpeg():
            reader = imageio_ffmpeg.read_frames(str(path), output_params=output, input_params=["-nostdin"])
            try:
                w, h = next(reader)["size"]
                for buffer in reader:
                    frames.append(np.frombuffer(buffer, np.uint8).reshape(h, w, 3))
                    if len(frames) > limit:
                        raise VideoError(f"{path.name} runs past {limit} frames, more than its header announced: "
                                         f"it is longer than {max_seconds:g} s or too large to hold in memory; "
                                         "trim it and try again.")
            finally:
                reader.close()
    except (OSError, RuntimeError, StopIteration) as err:
        if not frames:
            raise VideoError(f"{path.name} looks like a video but no frame could be decoded: the file is "
                             "corrupt or truncated; re-export or re-download it.") from err
    return np.stack(frames) if frames else np.zeros((0, height, width, 3), np.uint8)


def _check_frame_count(count: int, name: str) -> None:
    if count == 0:
        raise VideoError(f"{name} has no decodable frames: the file is corrupt or truncated; "
                         "re-export or re-download it.")
    if count == 1:
        raise VideoError(f"{name} has only 1 frame, and we need at least 2 frames to see motion: "
                         "upload a video clip rather than a still image.")


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


def _read_folder(folder: Path, width: int, height: int) -> np.ndarray:
    frames = []
    for file in _frame_files(folder):
        image = _read_image(file)
        if len(frames) == 0:
            size = image.shape[:2]
        elif image.shape[:2] != size:
            raise VideoError(f"The frame {file.name} is {image.shape[1]}x{image.shape[0]} but the first frame "
                             f"is {size[1]}x{size[0]}: all frames of a clip must have the same size.")
        if (image.shape[1], image.shape[0]) != (width, height):
            image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        frames.append(image)
    return np.stack(frames)


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
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".mp4", dir=path.parent)
    os.close(handle)
    try:
        _encode(frames, temp, fps)
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return path


def _encode(frames: np.ndarray, path: str, fps: float) -> None:
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

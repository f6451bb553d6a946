"""Reading reference frames: only the frames asked for are decoded (PyAV, from a file or a stream), then fitted to
the model size."""
import math
import os
from dataclasses import dataclass

import av
import numpy as np
import torch

from .errors import ReenactError

RESIZE_MODES = ("crop", "pad", "stretch")
FALLBACK_FPS = 8.0


@dataclass(frozen=True)
class FrameSelection:
    start: int = 0
    count: int = 14
    stride: int = 1
    target_fps: float = 0.0  # > 0 overrides stride: pick frames at this rate

    def step(self, source_fps: float) -> float:
        if self.target_fps > 0:
            return max(source_fps / self.target_fps, 1.0) if source_fps > 0 else 1.0
        return float(self.stride)

    def indices(self, source_fps: float) -> list[int]:
        step = self.step(source_fps)
        return [self.start + int(math.floor(i * step + 1e-6)) for i in range(self.count)]

    def clip_fps(self, source_fps: float) -> float:
        return source_fps / self.step(source_fps)

    def describe(self, source_fps: float) -> str:
        how = (f"at {self.target_fps:g} fps" if self.target_fps > 0 else f"every {self.stride} frame(s)")
        return f"{self.count} frames from frame {self.start}, {how} (source {source_fps:g} fps)"


def _frame_rate(stream) -> float:
    """The stream's average rate, as ComfyUI's own VIDEO reports it (VideoFromFile.get_components); the
    guessed rate when the container has none; FALLBACK_FPS when neither is a plausible rate."""
    for rate in (stream.average_rate, stream.guessed_rate):
        if rate and 0 < float(rate) <= 1000:
            return float(rate)
    return FALLBACK_FPS


def _too_few(selection: FrameSelection, source_fps: float, name: str, have: int) -> ReenactError:
    gives = sum(i < have for i in selection.indices(source_fps))
    return ReenactError(f"expected {selection.describe(source_fps)}, but {name} has only {have} "
                        f"frame{'s' if have != 1 else ''}, which gives {gives}: lower the frame count, start or stride")


def _rgb(frame) -> np.ndarray:
    """One decoded frame as (H, W, 3) uint8 RGB, turned upright by its display matrix (phone videos), as
    players show it."""
    image = frame.to_ndarray(format="rgb24")
    quarter_turns = round((frame.rotation or 0) / 90) % 4  # PyAV: degrees counterclockwise
    return np.rot90(image, quarter_turns) if quarter_turns else image


def _open(source, name: str):
    """Open a file path or binary stream with PyAV, turning FFmpeg's many error types into one clear error."""
    if isinstance(source, (str, os.PathLike)):
        if not os.path.isfile(source):
            raise ReenactError(f"expected a video file, got a path that does not exist: {source}")
        if os.path.getsize(source) == 0:
            raise ReenactError(f"expected a video file with frames, got {name}, which is empty (0 bytes)")
    try:
        return av.open(source)
    except Exception as e:  # noqa: BLE001 - PyAV raises many FFmpeg error types
        raise ReenactError(f"expected a readable video (mp4, webm, mov, gif), could not open {name}: it may be "
                           f"corrupt or not a video") from e


def _video_stream(container, name: str):
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams})
        found = f"only {' and '.join(kinds)} streams" if kinds else "no streams at all (no frames)"
        raise ReenactError(f"expected a video with a video stream, got {name}, which has {found}")
    return container.streams.video[0]


def _default_name(source, name: str | None) -> str:
    return name or (os.path.basename(source) if isinstance(source, (str, os.PathLike)) else "the video stream")


def describe_window(window: tuple[float, float]) -> str:
    """How errors name a trim window (start, duration in seconds; duration 0 = to the end)."""
    start, duration = window
    return f"trimmed to {duration:g} s from {start:g} s" if duration else f"trimmed to start at {start:g} s"


def _window_frames(container, stream, window: tuple[float, float]):
    """The decoded frames inside a trim window, in order, as ComfyUI's own VideoFromFile.get_components picks
    them (presentation time from start, before start + duration): seek to the key frame before the start
    instead of decoding everything before it. The caller stops iterating at its last selected frame."""
    start, duration = window
    start_pts = int(start / stream.time_base)
    end_pts = int((start + duration) / stream.time_base) if duration else None
    if start_pts:
        container.seek(start_pts, stream=stream)
    for frame in container.decode(stream):
        if frame.pts is None:
            raise ReenactError("expected frames with timestamps to find a trim window in, got a frame without one")
        if frame.pts < start_pts:
            continue
        if end_pts is not None and frame.pts >= end_pts:
            return
        yield frame


def read_video_frames(source, selection: FrameSelection, name: str | None = None,
                      window: tuple[float, float] = (0.0, 0.0)):
    """Decode the selected frames of a video; returns (IMAGE (F,H,W,3) in [0,1], source fps).

    `source` is a file path or a binary stream PyAV can open (what a VIDEO's get_stream_source() gives);
    `name` is what errors call it (default: the file's name). `window` is a trim (start, duration) in
    seconds, as a trimmed VIDEO reports it (duration 0 = to the end): frame indices count from its first
    frame. The frame rate is the video's own. Untrimmed, the frame count in the container's header, where it
    has one, is checked before anything is decoded. Frames before and between the selected ones are decoded
    but not converted, and reading stops at the last selected frame, so a long video is never held in memory.
    """
    name = _default_name(source, name)
    trimmed = tuple(window) != (0.0, 0.0)
    if trimmed:
        name = f"{name} ({describe_window(window)})"
    with _open(source, name) as container:
        stream = _video_stream(container, name)
        source_fps = _frame_rate(stream)
        wanted = selection.indices(source_fps)
        wanted_set, last = set(wanted), wanted[-1]
        if not trimmed and 0 < stream.frames <= last:  # the header's count (0 when the container has none)
            raise _too_few(selection, source_fps, name, stream.frames)
        frames, decoded = {}, 0
        for frame in _window_frames(container, stream, window) if trimmed else container.decode(stream):
            if decoded in wanted_set:
                frames[decoded] = _rgb(frame)
            decoded += 1
            if decoded > last:
                break
    if decoded == 0 and not trimmed:
        raise ReenactError(f"expected a video with frames, {name} has no video frames (empty, audio-only or "
                           f"corrupt)")
    if len(frames) < len(wanted):
        raise _too_few(selection, source_fps, name, decoded)
    stacked = np.stack([frames[i] for i in wanted])
    return torch.from_numpy(stacked).float().div_(255.0), source_fps


def decode_all_frames(source, name: str | None = None) -> np.ndarray:
    """Every frame as (F, H, W, 3) uint8 RGB, upright: for reading a whole result back (the demo, the tests).
    The same PyAV decoding as the nodes' reader, so what is checked is what the nodes would see."""
    name = _default_name(source, name)
    with _open(source, name) as container:
        frames = [_rgb(frame) for frame in container.decode(_video_stream(container, name))]
    return np.stack(frames) if frames else np.zeros((0, 0, 0, 3), np.uint8)


def stream_size(source) -> tuple[int, int] | None:
    """(width, height) of a video's first video stream as stored (before any display rotation), from the header
    alone; None when it has none or cannot be opened (the reader then says why)."""
    try:
        with av.open(source) as container:
            stream = container.streams.video[0] if container.streams.video else None
            return (stream.width, stream.height) if stream is not None else None
    except Exception:  # noqa: BLE001 - PyAV raises many FFmpeg error types; the reader reports them
        return None
    finally:
        if hasattr(source, "seek"):
            source.seek(0)


def select_from_images(images: torch.Tensor, selection: FrameSelection, source_fps: float,
                       name: str = "the IMAGE batch") -> torch.Tensor:
    """The same selection on frames already in memory (an IMAGE batch, a VIDEO made from images)."""
    wanted = selection.indices(source_fps)
    if wanted[-1] >= images.shape[0]:
        raise _too_few(selection, source_fps, name, images.shape[0])
    return images[wanted]


def fit_frames(frames: torch.Tensor, width: int, height: int, mode: str = "crop") -> torch.Tensor:
    """Resize (F,H,W,C) to (F,height,width,C): crop and pad keep the aspect ratio, stretch does not."""
    if mode not in RESIZE_MODES:
        raise ReenactError(f"expected a resize mode in {RESIZE_MODES}, got {mode!r}")
    x = frames[..., :3].movedim(-1, 1)
    h, w = x.shape[-2:]
    if mode == "stretch":
        size = (height, width)
    else:
        scale = (max if mode == "crop" else min)(height / h, width / w)
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
    if size != (h, w):
        x = torch.nn.functional.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
    x = x.clamp(0, 1)
    if mode == "crop":
        top, left = (size[0] - height) // 2, (size[1] - width) // 2
        x = x[..., top:top + height, left:left + width]
    elif mode == "pad":
        canvas = torch.zeros(x.shape[0], x.shape[1], height, width, dtype=x.dtype)
        top, left = (height - size[0]) // 2, (width - size[1]) // 2
        canvas[..., top:top + size[0], left:left + size[1]] = x
        x = canvas
    return x.movedim(1, -1).contiguous()

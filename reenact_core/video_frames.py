"""Reading reference frames: only the frames asked for are decoded, then fitted to the model size."""
import math
import os
from dataclasses import dataclass

import av
import cv2
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


def require_video_stream(path: str) -> None:
    """Cheap container probe (headers only, PyAV as ComfyUI's own video nodes use): an empty file or one
    without a video stream (audio only, or a container with no frames written) is named as such.
    Files PyAV cannot open at all are left to OpenCV, which reads some that PyAV does not."""
    name = os.path.basename(path)
    if os.path.getsize(path) == 0:
        raise ReenactError(f"expected a video file with frames, got {name}, which is empty (0 bytes)")
    try:
        container = av.open(path)
    except Exception:  # noqa: BLE001 - PyAV raises many FFmpeg error types; OpenCV gets its turn
        return
    with container:
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams})
            found = f"only {' and '.join(kinds)} streams" if kinds else "no streams at all (no frames)"
            raise ReenactError(f"expected a video with a video stream, got {name}, which has {found}")


def read_video_frames(path: str, selection: FrameSelection):
    """Decode the selected frames of a video file; returns (IMAGE (F,H,W,3) in [0,1], source fps).

    Frames before and between the selected ones are grabbed without being converted, and reading
    stops at the last selected frame, so a long video is never held in memory.
    """
    if not os.path.isfile(path):
        raise ReenactError(f"expected a video file, got a path that does not exist: {path}")
    require_video_stream(path)
    capture = cv2.VideoCapture(path)
    try:
        if not capture.isOpened():
            raise ReenactError(f"expected a readable video (mp4, webm, mov, gif), could not open "
                               f"{os.path.basename(path)}: it may be corrupt or not a video")
        source_fps = capture.get(cv2.CAP_PROP_FPS)
        if not source_fps or not math.isfinite(source_fps) or source_fps <= 0 or source_fps > 1000:
            source_fps = FALLBACK_FPS
        wanted = selection.indices(source_fps)
        wanted_set, last = set(wanted), wanted[-1]
        frames, index = {}, 0
        while index <= last:
            if index in wanted_set:
                ok, frame = capture.read()
                if ok:
                    frames[index] = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            else:
                ok = capture.grab()
            if not ok:
                break
            index += 1
    finally:
        capture.release()
    if index == 0:
        raise ReenactError(f"expected a video with frames, {os.path.basename(path)} has no video frames "
                           f"(empty, audio-only or corrupt)")
    if len(frames) < len(wanted):
        raise ReenactError(f"expected {selection.describe(source_fps)}, but {os.path.basename(path)} has only "
                           f"{index} frame{'s' if index != 1 else ''}, which gives {len(frames)}: lower the frame "
                           f"count, start or stride")
    stacked = np.stack([frames[i] for i in wanted])
    return torch.from_numpy(stacked).float().div_(255.0), source_fps


def select_from_images(images: torch.Tensor, selection: FrameSelection, source_fps: float) -> torch.Tensor:
    """The same selection on an IMAGE batch already in memory."""
    wanted = selection.indices(source_fps)
    if wanted[-1] >= images.shape[0]:
        raise ReenactError(f"expected {selection.describe(source_fps)}, but the IMAGE batch has only "
                           f"{images.shape[0]} frames: lower the frame count, start or stride")
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

"""Small synthetic media files for end-to-end runs: a moving square video and a still target image.

decode_all_frames is the product's own all-frames reader (reenact_core/video_frames.py), imported here for the
tests. Pictures are drawn with numpy and Pillow, videos written with PyAV: no OpenCV.
"""
import numpy as np
from PIL import Image, ImageDraw

from reenact_core.video_frames import decode_all_frames  # noqa: F401


def moving_square_frames(count=8, size=(96, 64), step=4, colour=(90, 200, 40)) -> list[np.ndarray]:
    """RGB frames of a square sliding right on a grey background: a motion a person can see."""
    width, height = size
    frames = []
    for i in range(count):
        frame = np.full((height, width, 3), 128, np.uint8)
        x = 8 + i * step
        frame[height // 3:2 * height // 3 + 1, x:x + height // 3 + 1] = colour  # edges inclusive
        frames.append(frame)
    return frames


def write_video(path: str, frames: list[np.ndarray], fps: float = 8.0) -> str:
    """RGB frames as an MPEG-4 part 2 (mp4v) mp4, frame i at i / fps, the frame count in its header."""
    import av
    from fractions import Fraction
    rate = Fraction(fps).limit_denominator(1000)
    height, width = frames[0].shape[:2]
    with av.open(path, "w") as out:
        stream = out.add_stream("mpeg4", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame.pts, frame.time_base = i, 1 / rate
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def write_target_image(path: str, size=(96, 64), colour=(60, 60, 200)) -> str:
    """An RGB disc on dark grey, saved in the format the path's extension names."""
    width, height = size
    image = Image.new("RGB", (width, height), (90, 90, 90))
    cx, cy, r = width // 3, height // 2, height // 4
    ImageDraw.Draw(image).ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
    image.save(path)
    return path


def write_h264(path: str, frames_rgb: np.ndarray, fps: float = 8.0, crf: int = 4) -> str:
    """(F, H, W, 3) uint8 RGB frames as near-lossless H.264 mp4 (yuv420p, playable in browsers)."""
    import av
    from fractions import Fraction
    with av.open(path, "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height, stream.pix_fmt = frames_rgb.shape[2], frames_rgb.shape[1], "yuv420p"
        stream.options = {"crf": str(crf)}
        for frame in frames_rgb:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path

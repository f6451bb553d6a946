"""Small synthetic media files for end-to-end runs: a moving square video and a still target image.

decode_all_frames is the demo's reader (reenact_toy/video_frames.py), imported here for the tests.
"""
import cv2
import numpy as np

from reenact_toy.video_frames import decode_all_frames  # noqa: F401


def moving_square_frames(count=8, size=(96, 64), step=4, colour=(40, 200, 90)) -> list[np.ndarray]:
    """BGR frames of a square sliding right on a grey background: a motion a person can see."""
    width, height = size
    frames = []
    for i in range(count):
        frame = np.full((height, width, 3), 128, np.uint8)
        x = 8 + i * step
        cv2.rectangle(frame, (x, height // 3), (x + height // 3, 2 * height // 3), colour, -1)
        frames.append(frame)
    return frames


def write_video(path: str, frames: list[np.ndarray], fps: float = 8.0) -> str:
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def write_target_image(path: str, size=(96, 64), colour=(200, 60, 60)) -> str:
    width, height = size
    image = np.full((height, width, 3), 90, np.uint8)
    cv2.circle(image, (width // 3, height // 2), height // 4, colour, -1)
    cv2.imwrite(path, image)
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

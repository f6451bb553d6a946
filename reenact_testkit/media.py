"""Small synthetic media files for the tests: a moving square video and a still target image for end-to-end runs,
videos with one solid colour a frame (frame_colour) for checking which frames a reader returned, and a count of
the frames PyAV decodes.

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


def write_video(path, frames, fps: float = 8.0, codec: str = "mpeg4"):
    """(H, W, 3) uint8 RGB frames (any iterable) as a video, frame i at i / fps, the frame count in its header; by
    default MPEG-4 part 2 (mp4v). Returns path."""
    import av
    from fractions import Fraction
    rate = Fraction(fps).limit_denominator(1000)
    with av.open(str(path), "w") as out:
        stream = None
        for i, image in enumerate(frames):
            if stream is None:
                stream = out.add_stream(codec, rate=rate)
                stream.height, stream.width = image.shape[:2]
                stream.pix_fmt = "yuv420p"
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame.pts, frame.time_base = i, 1 / rate
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def frame_colour(i) -> np.ndarray:
    """Frame i's own solid RGB colour, so the order of the decoded frames can be checked."""
    return np.array([(40 * i) % 256, 255 - (30 * i) % 256, (90 + 50 * i) % 256], np.uint8)


def write_coloured_mp4(path, frames: int, width: int, height: int, fps: float = 10.0):
    """An MPEG-4 part 2 (mp4v) mp4 of `frames` frames, frame i all frame_colour(i)."""
    write_video(path, (np.tile(frame_colour(i), (height, width, 1)) for i in range(frames)), fps)


def record_av_reads(monkeypatch, method: str, keep=lambda item: True) -> list:
    """Every item (frame or packet) that a container's `method` ("decode" or "demux") yields to a reader, for which
    keep(item) is true, in the list returned: av.open (a reader's only way into a video) wrapped with pytest's
    monkeypatch."""
    import av
    seen, real_open = [], av.open

    class Recording:
        def __init__(self, inner):
            self.inner = inner

        def __enter__(self):
            self.inner.__enter__()
            return self

        def __exit__(self, *exc):
            return self.inner.__exit__(*exc)

        def __getattr__(self, name):
            if name != method:
                return getattr(self.inner, name)

            def reading(*args, **kwargs):
                for item in getattr(self.inner, name)(*args, **kwargs):
                    if keep(item):
                        seen.append(item)
                    yield item
            return reading

    monkeypatch.setattr(av, "open", lambda *args, **kwargs: Recording(real_open(*args, **kwargs)))
    return seen


def count_decoded_frames(monkeypatch) -> list:
    """Every frame PyAV's decoder hands the reader (record_av_reads on decode)."""
    return record_av_reads(monkeypatch, "decode")


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

"""Media for the motion library's tests: toy blob clips, toy target images, and a clip whose data is cut after its
header."""
import os

import av
import numpy as np
import torch

from reenact_toy import toy_codec, toy_world

from .make_demo_assets import to_uint8
from .media import write_h264

SIZE = 16  # 128 px, the smallest side the nodes take


def toy_clip(seed: int) -> np.ndarray:
    video = toy_world.make_video(torch.Generator().manual_seed(seed), size=SIZE)
    return to_uint8(toy_codec.latents_to_pixels(video.latents))


def write_toy_references(folder: str, count: int, seed: int) -> list[str]:
    paths = []
    for i in range(count):
        path = os.path.join(folder, f"toy_{i:02}.mp4")
        write_h264(path, toy_clip(seed + i), 6)
        paths.append(path)
    return paths


def write_toy_images(folder: str, count: int, seed: int) -> list[str]:
    """First frames of toy clips (new colours, sizes and places) as PNG targets for `apply`."""
    from PIL import Image
    os.makedirs(folder, exist_ok=True)
    paths = []
    for i in range(count):
        path = os.path.join(folder, f"target_{i:02}.png")
        Image.fromarray(toy_clip(seed + i)[0]).save(path)
        paths.append(path)
    return paths


def write_truncated_video(path: str, seed: int) -> str:
    """An MP4 with its index first (faststart), so its header still promises every frame, and its data cut short."""
    frames = toy_clip(seed)
    with av.open(path, "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=6)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with open(path, "r+b") as f:
        f.truncate(int(os.path.getsize(path) * 0.6))
    return path

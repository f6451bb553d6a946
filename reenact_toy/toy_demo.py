"""The demo's bundled inputs (demo_assets/), and how its result is scored and shown: all on the toy, labelled so.

reenact_cli/demo.py runs the graph; this module knows the toy side. demo_assets/ holds a reference clip
of a blob going round a circle, a target first frame with another colour, size and start, the toy's
neutral init embedding, and demo.json with the paths the tracker compares against.
`python -m reenact_testkit.make_demo_assets` regenerates them (fixed seed); it lives in the testkit
because it needs the testkit, and the demo only reads what it wrote.
"""
import json
import os

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from . import toy_codec, toy_world

ASSETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "demo_assets")
REFERENCE, TARGET, INIT, SPEC = "toy_reference.mp4", "toy_target.png", "toy_init.safetensors", "demo.json"
SIZE = 16                       # latents; 128 px, the smallest size the nodes take
LABEL = "TOY MODEL DEMO: a 2.2M-parameter SVD trained here on synthetic blobs. Not Stable Video Diffusion."


def load_spec(folder=ASSETS) -> dict:
    with open(os.path.join(folder, SPEC)) as f:
        return json.load(f)


def score_frames(frames_rgb: np.ndarray, spec: dict) -> dict:
    """Track the target's blob in the result's frames and compare with the reference path moved to its start."""
    latents = toy_codec.pixels_to_latents(torch.from_numpy(frames_rgb).float() / 255)
    tracked = toy_world.track(latents, torch.tensor(spec["target_colour"]))
    truth = torch.tensor(spec["target_path"])
    mean_err, end_err = toy_world.motion_errors(tracked, truth)
    return {"tracked": tracked.tolist(), "mean_err": mean_err, "end_err": end_err,
            "matches": toy_world.matches(tracked, truth)}


def _mark(image, path, colour):
    """A 9-pixel cross at a latent position, drawn into the (H, W, 3) tile in place."""
    scale = image.shape[0] // SIZE
    x, y = path
    cx, cy = int((x + 0.5) * scale), int((y + 0.5) * scale)
    height, width = image.shape[:2]
    if 0 <= cy < height:
        image[cy, max(cx - 4, 0):max(cx + 5, 0)] = colour
    if 0 <= cx < width:
        image[max(cy - 4, 0):max(cy + 5, 0), cx] = colour


def _text_rows(lines, width: int) -> np.ndarray:
    """Black lines of text on white, 18 px apart, drawn with Pillow's bundled font."""
    header = Image.new("RGB", (width, 18 * len(lines) + 8), (255, 255, 255))
    draw = ImageDraw.Draw(header)
    try:
        font = ImageFont.load_default(size=12)
    except TypeError:  # Pillow before 10.1: only the small bitmap font
        font = ImageFont.load_default()
    for i, line in enumerate(lines):
        draw.text((6, 18 * (i + 1)), line, fill=(0, 0, 0), font=font, anchor="ls")
    return np.array(header)


def side_by_side(reference_rgb: np.ndarray, result_rgb: np.ndarray, spec: dict, score: dict) -> np.ndarray:
    """One picture a person can judge: the reference row over the result row, the expected path marked.

    Green crosses: where the motion should put the blob (reference path moved to the target's start);
    red crosses on the result: where the tracker found it.
    """
    frames = min(len(reference_rgb), len(result_rgb))
    rows = []
    for clip, path, tracked in ((reference_rgb, spec["reference_path"], None),
                                (result_rgb, spec["target_path"], score["tracked"])):
        tiles = []
        for f in range(frames):
            tile = np.ascontiguousarray(clip[f])
            _mark(tile, path[f], (0, 200, 0))
            if tracked is not None:
                _mark(tile, tracked[f], (230, 0, 0))
            tiles.append(np.pad(tile, ((2, 2), (2, 2), (0, 0)), constant_values=255))
        rows.append(np.concatenate(tiles, 1))
    width = rows[0].shape[1]
    lines = [LABEL, f"top: reference clip ({spec['motion']}). bottom: target reenacted by the toy model.",
             f"green: expected path, red: tracked. mean path error {score['mean_err']:.2f} px, "
             f"end {score['end_err']:.2f} px (latent px), {'matches' if score['matches'] else 'does not match'}."]
    header = _text_rows(lines, width)
    return np.concatenate([header, *rows], 0)


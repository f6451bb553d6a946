"""The demo's bundled inputs, and how its result is scored and shown: all on the toy model, labelled as such.

`python -m reenact_testkit.toy_demo` regenerates reenact_cli/demo_assets/ (fixed seed): a reference clip
of a blob going round a circle, a target first frame with another colour, size and start, the toy's
neutral init embedding, and demo.json with the paths the tracker compares against.
"""
import json
import os

import cv2
import numpy as np
import torch

from . import toy_codec, toy_world

ASSETS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "reenact_cli", "demo_assets")
REFERENCE, TARGET, INIT, SPEC = "toy_reference.mp4", "toy_target.png", "toy_init.safetensors", "demo.json"
SEED = 2024
SIZE = 16                       # latents; 128 px, the smallest size the nodes take
FPS = 6
LABEL = "TOY MODEL DEMO: a 2.2M-parameter SVD trained here on synthetic blobs. Not Stable Video Diffusion."


def demo_videos():
    """The reference (circle motion) and the target (same offsets, new colour, width and start)."""
    gen = torch.Generator().manual_seed(SEED)
    reference = toy_world.make_video(gen, kind="circle", size=SIZE)
    offsets = reference.path - reference.path[:1]
    target = toy_world.make_video(gen, kind=reference.kind, offsets=offsets, size=SIZE)
    return reference, target


def to_uint8(images: torch.Tensor) -> np.ndarray:
    return (images * 255).round().clamp(0, 255).to(torch.uint8).numpy()


def write_assets(folder=ASSETS):
    """Needs ComfyUI importable (the init embedding is written by the pack's own save_embedding)."""
    import tempfile

    from reenact_core.embedding_file import save_embedding
    from reenact_core.motion_embedding import MotionEmbedding

    from .media import write_h264
    from .toy_fidelity import init_tokens
    os.makedirs(folder, exist_ok=True)
    reference, target = demo_videos()
    write_h264(os.path.join(folder, REFERENCE), to_uint8(toy_codec.latents_to_pixels(reference.latents)), FPS)
    first = to_uint8(toy_codec.latents_to_pixels(target.latents[:1]))[0]
    cv2.imwrite(os.path.join(folder, TARGET), cv2.cvtColor(first, cv2.COLOR_RGB2BGR))
    init = MotionEmbedding(init_tokens(toy_world.FRAMES, 1, SEED), {"init": "toy-null", "model": "toy SVD (demo)"})
    with tempfile.TemporaryDirectory() as scratch:
        os.replace(save_embedding(init, scratch, "toy_init"), os.path.join(folder, INIT))
    spec = {"label": LABEL, "motion": reference.label, "fps": FPS, "frames": toy_world.FRAMES, "size_px": SIZE * 8,
            "reference_path": reference.path.tolist(), "target_path": target.path.tolist(),
            "target_colour": target.colour.tolist(), "reference_colour": reference.colour.tolist()}
    with open(os.path.join(folder, SPEC), "w") as f:
        json.dump(spec, f, indent=1)
    return folder


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
    scale = image.shape[0] // SIZE
    x, y = path
    cv2.drawMarker(image, (int((x + 0.5) * scale), int((y + 0.5) * scale)), colour, cv2.MARKER_CROSS, 9, 1)


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
    header = np.full((18 * len(lines) + 8, width, 3), 255, np.uint8)
    for i, line in enumerate(lines):
        cv2.putText(header, line, (6, 18 * (i + 1)), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([header, *rows], 0)


if __name__ == "__main__":
    from reenact_cli.locate import setup_comfyui
    setup_comfyui(cpu=True)
    print(f"wrote {write_assets()}")

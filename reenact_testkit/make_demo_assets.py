"""Regenerate the demo's bundled inputs in reenact_toy/demo_assets/ (fixed seed).

    python -m reenact_testkit.make_demo_assets

Here, not beside the assets, because it needs the testkit (init tokens, H.264 writer) and the pack's core
(embedding files), and the product must not import either for this. The demo only reads what it writes
(reenact_toy/toy_demo.py says what each file is).
"""
import json
import os
import tempfile

import numpy as np
import torch
from PIL import Image

from reenact_toy import toy_codec, toy_world
from reenact_toy.toy_demo import ASSETS, INIT, LABEL, REFERENCE, SIZE, SPEC, TARGET

SEED = 2024
FPS = 6


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
    from reenact_core.embedding_file import save_embedding
    from reenact_core.motion_embedding import MotionEmbedding

    from .media import write_h264
    from .toy_fidelity import init_tokens
    os.makedirs(folder, exist_ok=True)
    reference, target = demo_videos()
    write_h264(os.path.join(folder, REFERENCE), to_uint8(toy_codec.latents_to_pixels(reference.latents)), FPS)
    first = to_uint8(toy_codec.latents_to_pixels(target.latents[:1]))[0]
    Image.fromarray(first).save(os.path.join(folder, TARGET))
    init = MotionEmbedding(init_tokens(toy_world.FRAMES, 1, SEED), {"init": "toy-null", "model": "toy SVD (demo)"})
    with tempfile.TemporaryDirectory() as scratch:
        os.replace(save_embedding(init, scratch, "toy_init"), os.path.join(folder, INIT))
    spec = {"label": LABEL, "motion": reference.label, "fps": FPS, "frames": toy_world.FRAMES, "size_px": SIZE * 8,
            "reference_path": reference.path.tolist(), "target_path": target.path.tolist(),
            "target_colour": target.colour.tolist(), "reference_colour": reference.colour.tolist()}
    with open(os.path.join(folder, SPEC), "w") as f:
        json.dump(spec, f, indent=1)
    return folder


if __name__ == "__main__":
    from reenact_cli.locate import setup_comfyui
    setup_comfyui(cpu=True)
    print(f"wrote {write_assets()}")

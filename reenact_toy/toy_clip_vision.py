"""The SVD-like toy's image encoder: ComfyUI's own CLIP vision model, shrunk, with frozen seeded weights.

Why: SVD conditions on a CLIP image embedding of the first frame, and the pack's Inflate CLIP Embedding
starts inversion from CLIP embeddings of the reference frames. ComfyUI's CLIP_VISION loader recognises only
full-size encoders (ViT-L and larger, 300 M+ parameters), so the demo's loader node builds
comfy.clip_vision.ClipVisionModel from this small config instead and loads its weights from the fixture
beside this file: encode_image, clip_preprocess and the memory management are ComfyUI's, unchanged. Its
weights are random and frozen (as SVD's CLIP was frozen); it sees 96 x 96 toy frames (12 x 12 latents).
"""
import os

import torch

from . import toy_world
from .small_unet import init_weights

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "toy_clip_vision.safetensors")
SEED = 4321
CONFIG = {
    "model_type": "clip_vision_model",
    "hidden_act": "quick_gelu",
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "num_channels": 3,
    "image_size": 96,
    "patch_size": 16,
    "projection_dim": toy_world.CONTEXT_DIM,
    "layer_norm_eps": 1e-5,
}


def build(state_dict=None):
    """A comfy.clip_vision.ClipVisionModel of CONFIG, with `state_dict` or seeded weights."""
    import comfy.clip_vision
    clip = comfy.clip_vision.ClipVisionModel(dict(CONFIG))
    if state_dict is None:
        init_weights(clip.model, SEED)
    else:
        missing, unexpected = clip.load_sd(state_dict)
        if missing or unexpected:
            raise ValueError(f"expected the toy CLIP vision weights, got missing {missing}, unexpected {unexpected}")
    return clip


def load(path=FIXTURE):
    from safetensors.torch import load_file
    return build(load_file(path))


def save_fixture(clip, path=FIXTURE):
    from safetensors.torch import save_file
    save_file({k: v.detach().to(torch.float16).contiguous() for k, v in clip.get_sd().items()}, path,
              metadata={"seed": str(SEED), "config": str(CONFIG)})

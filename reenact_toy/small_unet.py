"""ComfyUI's SVD unet_config shrunk to two levels, and a seeded init: what the toy SVD is built from.

ComfyUI's ops skip weight initialisation, so every parameter is initialised here from a seeded
generator. The testkit's small random-weight models (reenact_testkit/small_models.py) use both too.
"""
import math

import torch

SMALL_CONTEXT_DIM = 64


def small_svd_unet_config(model_channels=64, context_dim=SMALL_CONTEXT_DIM):
    """The unet_config ComfyUI's detector gives SVD, shrunk to two levels."""
    return {
        "use_checkpoint": False,
        "use_spatial_transformer": True,
        "legacy": False,
        "in_channels": 8,
        "out_channels": 4,
        "model_channels": model_channels,
        "num_res_blocks": [1, 1],
        "channel_mult": [1, 2],
        "transformer_depth": [1, 1],
        "transformer_depth_output": [1, 1, 1, 1],
        "transformer_depth_middle": 1,
        "use_linear_in_transformer": True,
        "context_dim": context_dim,
        "adm_in_channels": 768,
        "num_classes": "sequential",
        "image_size": 32,
        "extra_ff_mix_layer": True,
        "use_spatial_context": True,
        "merge_strategy": "learned_with_images",
        "merge_factor": 0.0,
        "video_kernel_size": [3, 1, 1],
        "use_temporal_resblock": True,
        "use_temporal_attention": True,
        "disable_temporal_crossattention": False,
    }


@torch.no_grad()
def init_weights(module, seed):
    """Seeded init: fan-in-scaled matrices, unit norm weights, small biases."""
    gen = torch.Generator().manual_seed(seed)
    norms = (torch.nn.GroupNorm, torch.nn.LayerNorm)
    for sub in module.modules():
        for leaf, p in sub.named_parameters(recurse=False):
            if isinstance(sub, norms):
                p.fill_(1.0 if leaf == "weight" else 0.0)
            elif p.ndim >= 2:
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(p[0].numel()))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.02)
    return module

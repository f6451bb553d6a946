"""Small SVD, VAE and CLIP-vision models built from ComfyUI's own classes.

Real SVD weights cannot be downloaded here, so the method is proven on small models that use
exactly the classes ComfyUI builds for SVD (README, "How it works inside ComfyUI"). The shrunk unet_config and the
seeded init are the toy SVD's (reenact_toy/small_unet.py), shared with it.
"""
import json
import os
import tempfile

import torch

from reenact_toy.small_unet import SMALL_CONTEXT_DIM, init_weights, small_svd_unet_config


def full_svd_unet_config():
    """The unet_config ComfyUI's detector gives the released SVD / SVD-XT checkpoints (1.52 B params)."""
    config = small_svd_unet_config(model_channels=320, context_dim=1024)
    config.update(num_res_blocks=[2, 2, 2, 2], channel_mult=[1, 2, 4, 4],
                  transformer_depth=[1, 1, 1, 1, 1, 1, 0, 0],
                  transformer_depth_output=[1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0])
    return config


def make_svd(unet_config, seed=0, dtype=torch.float32):
    """A ModelPatcher around comfy.model_base.SVD_img2vid built from `unet_config`, seeded weights."""
    import comfy.model_management
    import comfy.model_patcher
    import comfy.supported_models

    model_config = comfy.supported_models.SVD_img2vid(unet_config)
    model_config.set_inference_dtype(dtype, None)
    model = model_config.get_model({})
    init_weights(model.diffusion_model, seed)
    model.eval()
    device = comfy.model_management.get_torch_device()
    offload = comfy.model_management.unet_offload_device()
    return comfy.model_patcher.ModelPatcher(model, load_device=device, offload_device=offload)


def make_small_svd(seed=0, model_channels=64, context_dim=SMALL_CONTEXT_DIM):
    """A small SVD: ComfyUI's own SVD classes with two levels of 64 and 128 channels."""
    return make_svd(small_svd_unet_config(model_channels, context_dim), seed)


def make_small_vae(seed=1):
    """comfy.sd.VAE with a 3-level AutoencoderKL: 8x downscale and 4 latent channels, like SD's."""
    import comfy.sd
    from comfy.ldm.models.autoencoder import AutoencoderKL

    ddconfig = {"double_z": True, "z_channels": 4, "resolution": 64, "in_channels": 3, "out_ch": 3,
                "ch": 32, "ch_mult": [1, 1, 1, 1], "num_res_blocks": 1, "attn_resolutions": [],
                "dropout": 0.0}
    config = {"params": {"ddconfig": ddconfig, "embed_dim": 4}}
    module = init_weights(AutoencoderKL(ddconfig=ddconfig, embed_dim=4), seed)
    return comfy.sd.VAE(sd=module.state_dict(), config=config)


def make_small_clip_vision(seed=2, projection_dim=SMALL_CONTEXT_DIM):
    """comfy.clip_vision.ClipVisionModel from its own JSON config, at 32x32 input."""
    import comfy.clip_vision

    config = {"attention_dropout": 0.0, "dropout": 0.0, "hidden_act": "gelu", "hidden_size": 32,
              "image_size": 32, "intermediate_size": 64, "layer_norm_eps": 1e-5,
              "model_type": "clip_vision_model", "num_attention_heads": 2, "num_channels": 3,
              "num_hidden_layers": 2, "patch_size": 8, "projection_dim": projection_dim}
    fd, path = tempfile.mkstemp(suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(config, f)
    try:
        clip = comfy.clip_vision.ClipVisionModel(path)
    finally:
        os.remove(path)
    init_weights(clip.model, seed)
    return clip

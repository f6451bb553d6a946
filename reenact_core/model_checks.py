"""Cheap checks on ComfyUI objects, run before any long work starts."""

import comfy.model_base

from .errors import ReenactError
from .safe_files import short_fingerprint


def model_family(model_patcher) -> str:
    """The name ComfyUI gives the model's config (SD15, SDXL, SVD_img2vid, ...)."""
    model = getattr(model_patcher, "model", None)
    config = getattr(model, "model_config", None)
    return type(config).__name__ if config is not None else type(model_patcher).__name__


def require_svd(model_patcher):
    """Raise unless the MODEL is ComfyUI's SVD image-to-video model."""
    if not isinstance(getattr(model_patcher, "model", None), comfy.model_base.SVD_img2vid):
        raise ReenactError(f"expected an SVD image-to-video MODEL (from Image Only Checkpoint Loader "
                           f"with svd.safetensors or svd_xt.safetensors), got {model_family(model_patcher)}")


def context_dim(model_patcher) -> int:
    return int(model_patcher.model.model_config.unet_config["context_dim"])


def require_embedding_fits(model_patcher, embedding):
    require_svd(model_patcher)
    dim = context_dim(model_patcher)
    if embedding.dim != dim:
        source = ""
        if embedding.metadata.get("init") == "clip":
            source = (f" from Inflate CLIP Embedding: its CLIP_VISION projects to {embedding.dim}, not this "
                      f"model's {dim}; use the CLIP_VISION of the same SVD checkpoint")
        raise ReenactError(f"expected a motion embedding of dim {dim} to match this model's "
                           f"cross-attention, got dim {embedding.dim}{source}")


def require_vae_for(model_patcher, vae):
    """The VAE must make latents with the channel count the SVD UNet concatenates."""
    expected = int(model_patcher.model.model_config.unet_config["in_channels"]) // 2
    got = getattr(vae, "latent_channels", None)
    if got != expected:
        raise ReenactError(f"expected a VAE with {expected} latent channels (the SVD checkpoint's own "
                           f"VAE), got one with {got}")


def model_fingerprint(model_patcher) -> str:
    """Family plus a short hash of the UNet's first conv: tells checkpoints apart without a file name."""
    weight = model_patcher.model.diffusion_model.input_blocks[0][0].weight
    return f"{model_family(model_patcher)}:{short_fingerprint(weight.detach().float().cpu().numpy().tobytes())}"


def require_latents_fit(model_patcher, latents, width: int, height: int):
    """The encoded reference must have the latent channels and 8x downscale SVD's UNet takes.

    Checked on the actual latents too (a cheap encode, before any step): a VAE's `latent_channels`
    attribute is only as right as the config it was built from.
    """
    channels = int(model_patcher.model.model_config.unet_config["in_channels"]) // 2
    expected = (latents.shape[0], channels, height // 8, width // 8)
    if tuple(latents.shape) != expected:
        raise ReenactError(f"expected the VAE to encode the reference to latents of shape {expected} (the SVD "
                           f"checkpoint's own VAE: {channels} channels, 8x smaller), got {tuple(latents.shape)}")

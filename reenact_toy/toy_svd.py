"""The toy SVD: ComfyUI's own SVD classes, shrunk to 2.2 M parameters, and its fp16 fixture.

Why a subclass of comfy.supported_models.SVD_img2vid: ComfyUI fixes 64 channels per attention head
(unet_extra_config), which needs at least 64 model channels (8.3 M parameters, 17 MB in fp16).
With 32 channels per head the model keeps every SVD part (spatial and temporal transformers with
cross-attention, temporal resblocks, learned mixing, EDM v-prediction) at 32/64 channels, 2.2 M
parameters and a 4.4 MB fp16 fixture. The UNet, model_base.SVD_img2vid and model_sampling are
ComfyUI's own, unchanged.

The trained weights sit next to this file (toy_svd.safetensors), so they are found through the link
the demo puts in its ComfyUI's custom_nodes too. Also here: the conditioning the toy is sampled with,
built by the pack's own transform (reenact_core.motion_conditioning; tests and benchmarks only), and
sampling through ComfyUI's own KSampler.
"""
import json
import os

import torch

from . import toy_world
from .small_unet import init_weights, small_svd_unet_config

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "toy_svd.safetensors")
MODEL_CHANNELS = 32
HEAD_CHANNELS = 32
FPS, MOTION_BUCKET = 6, 127


def toy_unet_config(model_channels=MODEL_CHANNELS):
    return small_svd_unet_config(model_channels=model_channels, context_dim=toy_world.CONTEXT_DIM)


def _model_config(unet_config, dtype):
    import comfy.supported_models

    class ToySVDConfig(comfy.supported_models.SVD_img2vid):
        unet_extra_config = dict(comfy.supported_models.SVD_img2vid.unet_extra_config,
                                 num_head_channels=HEAD_CHANNELS)

    config = ToySVDConfig(unet_config)
    config.set_inference_dtype(dtype, None)
    return config


@torch.no_grad()
def zero_residual_outputs(diffusion_model):
    """Zero the last layer of every residual branch and the output conv, as SD's UNet is initialised.

    Each block then starts as the identity, which trains faster and more stably than the
    fan-in-scaled init of small_models.init_weights alone (that init is for fixed random models).
    """
    for name, p in diffusion_model.named_parameters():
        if ".out_layers.3." in name or ".proj_out." in name or name.startswith("out.2."):
            p.zero_()


def build_toy_model(seed=0, dtype=torch.float32, for_training=False, model_channels=MODEL_CHANNELS):
    """A bare comfy.model_base.SVD_img2vid with seeded weights (no ModelPatcher).

    `model_channels` other than MODEL_CHANNELS: a wider toy, for the model-size lever (benchmarks/toy/README.md)."""
    model = _model_config(toy_unet_config(model_channels), dtype).get_model({})
    init_weights(model.diffusion_model, seed)
    if for_training:
        zero_residual_outputs(model.diffusion_model)
    return model


def wrap(model):
    """A ModelPatcher, the MODEL type ComfyUI's nodes and samplers take."""
    import comfy.model_management
    import comfy.model_patcher
    model.eval()
    return comfy.model_patcher.ModelPatcher(model, load_device=comfy.model_management.get_torch_device(),
                                            offload_device=comfy.model_management.unet_offload_device())


def save_fixture(diffusion_model, path=FIXTURE, metadata=None):
    """fp16 safetensors of the UNet weights, with the unet config and training facts as metadata."""
    from safetensors.torch import save_file
    os.makedirs(os.path.dirname(path), exist_ok=True)
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in diffusion_model.state_dict().items()}
    meta = {"unet_config": json.dumps(toy_unet_config(diffusion_model.model_channels)),
            "head_channels": str(HEAD_CHANNELS)}
    meta.update({k: str(v) for k, v in (metadata or {}).items()})
    save_file(state, path, metadata=meta)


def load_toy_svd(path=FIXTURE, dtype=torch.float32):
    """The trained toy SVD as a ModelPatcher, fp16 weights upcast to `dtype` (CPU runs fp32)."""
    from safetensors import safe_open
    with safe_open(path, framework="pt") as f:  # one read: the weights and the width their metadata names
        config = json.loads((f.metadata() or {}).get("unet_config", "{}"))
        weights = {name: f.get_tensor(name) for name in f.keys()}
    model = build_toy_model(seed=0, dtype=dtype, model_channels=config.get("model_channels", MODEL_CHANNELS))
    missing, unexpected = model.diffusion_model.load_state_dict(weights, strict=True)
    assert not missing and not unexpected
    return wrap(model)


def base_conditioning(first_frame_latent, pooled=None):
    """What SVD_img2vid_Conditioning gives, for the toy: positive and negative.

    The toy has no CLIP; its pooled token is all zeros, the null token the model was trained to read
    as "no motion information" (token dropout). The negative also zeroes the image, like ComfyUI's.
    """
    d = toy_world.CONTEXT_DIM
    pooled = torch.zeros(1, 1, d) if pooled is None else pooled
    opts = {"motion_bucket_id": MOTION_BUCKET, "fps": FPS, "augmentation_level": 0.0}
    positive = [[pooled, dict(opts, concat_latent_image=first_frame_latent)]]
    negative = [[torch.zeros(1, 1, d), dict(opts, concat_latent_image=torch.zeros_like(first_frame_latent))]]
    return positive, negative


def conditioning_for(first_frame_latent, tokens, frames=toy_world.FRAMES):
    """Positive/negative carrying (F+1, N, D) motion tokens, or plain conditioning when tokens is None."""
    from reenact_core.motion_conditioning import conditioning_with_motion, positive_and_negative
    positive, negative = base_conditioning(first_frame_latent)
    if tokens is None:
        return (conditioning_with_motion(positive, frames, None, 1),
                conditioning_with_motion(negative, frames, None, 1))
    return positive_and_negative(positive, negative, tokens, frames)


SAMPLE_STEPS, SAMPLE_CFG = 12, 1.0


def sample_video(patcher, first_frame_latent, tokens, seed, frames=toy_world.FRAMES, steps=SAMPLE_STEPS,
                 cfg=SAMPLE_CFG):
    """ComfyUI's own KSampler (euler, karras) on the toy; returns (F, 4, H, W) LATENT units."""
    import nodes as comfy_nodes
    positive, negative = conditioning_for(first_frame_latent, tokens, frames)
    h, w = first_frame_latent.shape[-2:]
    latent = {"samples": torch.zeros(frames, toy_world.CHANNELS, h, w)}
    with torch.inference_mode():
        out = comfy_nodes.common_ksampler(patcher, seed, steps, cfg, "euler", "karras", positive, negative, latent)
    return out[0]["samples"]


def obedience(patcher, videos, mode="true", seed=0, steps=SAMPLE_STEPS, cfg=SAMPLE_CFG):
    """Fraction of `videos` whose sampled motion matches their own ground-truth path.

    mode "true": each video is sampled with its own ground-truth tokens;
    "wrong": with the next video's tokens (a motion it did not have);
    "plain": with plain conditioning (the null pooled token), as SVD without motion tokens.
    Returns (fraction matched, list of (mean error, endpoint error, matched) per video). "Matches" is
    toy_world.matches: mean tracked-centre error < 0.75 px and endpoint error < 1 px.
    """
    results = []
    for i, video in enumerate(videos):
        if mode == "true":
            tokens = toy_world.motion_embedding_tokens(video.path)
        elif mode == "wrong":
            tokens = toy_world.motion_embedding_tokens(videos[(i + 1) % len(videos)].path)
        elif mode == "plain":
            tokens = None
        else:
            raise ValueError(f"expected mode true, wrong or plain, got {mode!r}")
        sampled = sample_video(patcher, video.latents[:1], tokens, seed + i, frames=video.latents.shape[0],
                               steps=steps, cfg=cfg)
        tracked = toy_world.track(sampled, video.colour)
        results.append((toy_world.motion_errors(tracked, video.path), toy_world.matches(tracked, video.path)))
    fraction = sum(m for _, m in results) / len(results)
    return fraction, [(e[0], e[1], m) for e, m in results]

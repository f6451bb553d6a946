"""A short, cheap sample of the motion being learned, so a user can stop a run that goes wrong.

It is what Apply Motion Embedding + ComfyUI's KSampler + VAE Decode would give with the current tokens, at a
preview's cost:
- the same conditioning transform (`positive_and_negative`, strength 1) on SVD conditioning of the target image;
- ComfyUI's own sampler (`comfy.sample.sample`), `PREVIEW_STEPS` euler steps on the karras schedule;
- CFG 1, so ComfyUI skips the negative: one UNet forward per sampler step and no CLIP vision model needed
  (`svd_base_conditioning` says why the pooled token does not matter then).

Cost: PREVIEW_STEPS forwards and one VAE decode of the frames, with no backward, against an inversion step's
forward and backward (and recompute, with checkpointing). What that comes to in steps: benchmarks/README.md
(a step's cost in forwards) and the run's own log line (RunStats.describe_previews).

A preview never changes the run: it reads a copy of the tokens, draws its noise from its own seed inside a
forked CPU RNG (ComfyUI's prepare_noise seeds the global one), and runs between optimisation steps with the MODEL
as the user has it (no layer wrappers, aliased weights or compute-dtype switch are in place then).
"""
from dataclasses import dataclass

import torch

import comfy.model_management
import comfy.sample

from .motion_conditioning import positive_and_negative, svd_base_conditioning

PREVIEW_STEPS = 10
PREVIEW_SAMPLER = "euler"
PREVIEW_SCHEDULER = "karras"


@dataclass(frozen=True)
class PreviewTarget:
    """What every preview of a run shares: the target image's latent and the SVD conditioning numbers."""
    concat_latent: torch.Tensor  # (1, 4, h, w): the VAE latent of the target image, as SVD conditioning holds it
    frames: int
    fps: int
    motion_bucket_id: int
    augmentation_level: float
    seed: int


def _stop_if_cancelled(*_):
    """The sampler's per-step callback: Cancel stops a preview within a sampler step, like an inversion step."""
    comfy.model_management.throw_exception_if_processing_interrupted()


def sample_preview(model_patcher, vae, target: PreviewTarget, tokens: torch.Tensor,
                   steps: int = PREVIEW_STEPS) -> torch.Tensor:
    """The frames (F, H, W, 3) in [0, 1] that the current `tokens` (F+1, N, D) give on the target image."""
    base = svd_base_conditioning(target.concat_latent, tokens.shape[-1], target.fps, target.motion_bucket_id,
                                 target.augmentation_level)
    positive, negative = positive_and_negative(base, base, tokens.detach().float().cpu(), target.frames)
    latent = torch.zeros(target.frames, *target.concat_latent.shape[1:])
    with torch.random.fork_rng(devices=[]), torch.inference_mode():
        noise = comfy.sample.prepare_noise(latent, target.seed)
        samples = comfy.sample.sample(model_patcher, noise, steps, 1.0, PREVIEW_SAMPLER, PREVIEW_SCHEDULER,
                                      positive, negative, latent, callback=_stop_if_cancelled, disable_pbar=True,
                                      seed=target.seed)
        images = vae.decode(samples)
    return images.reshape(-1, *images.shape[-3:]).float().cpu()

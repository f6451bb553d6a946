"""Shared test helpers: SVD conditioning and sampling through ComfyUI's own nodes, the Optimize node's inputs,
ComfyUI's Cancel at a chosen step, and the held-out loss the inversion tests compare."""
import contextlib
import sys

import torch

import comfy.model_management as mm

import nodes as comfy_nodes
from comfy_extras.nodes_video_model import SVD_img2vid_Conditioning

from conftest import run_node


def svd_conditioning(clip_vision, vae, image, frames, size=64, fps=6, bucket=127):
    """ComfyUI's SVD_img2vid_Conditioning node: (positive, negative, latent)."""
    with torch.inference_mode():
        return SVD_img2vid_Conditioning().encode(clip_vision, image, vae, size, size, frames, bucket, fps, 0.0)


def sample(model, positive, negative, latent, seed=0, steps=4, cfg=2.5):
    """ComfyUI's own KSampler; returns the denoised latent samples."""
    with torch.inference_mode():
        out = comfy_nodes.common_ksampler(model, seed, steps, cfg, "euler", "karras", positive, negative, latent)
    return out[0]["samples"]


def apply_motion(positive, negative, embedding, latent, strength=1.0):
    return run_node("ApplyMotionEmbedding", positive=positive, negative=negative, motion_embedding=embedding,
                    latent=latent, strength=strength, use_embedding_fps_and_bucket=True)


def optimize_inputs(**overrides) -> dict:
    """OptimizeMotionEmbedding's inputs with cheap test defaults; pass model, vae, reference, init_embedding and
    whatever else differs."""
    inputs = dict(steps=2, learning_rate=0.01, seed=0, sigma_log_mean=0.7, sigma_log_std=1.6, augmentation_level=0.0,
                  fps=6, motion_bucket_id=127, gradient_checkpointing="off")
    inputs.update(overrides)
    return inputs


PACK_CHECKERS = ("nodes.optimize", "reenact_core.motion_preview")


@contextlib.contextmanager
def cancel_at_check(n: int):
    """ComfyUI's own interrupt flag (the Cancel button) set at the pack's n-th interrupt check (one per
    optimisation step, one per preview sampler step); yields the list of those checks, so a test can say where
    the run stopped. Checks made by ComfyUI itself are not counted: since 0.33 its ops check the flag before
    every layer, so counting them would tie a test to the model's layer count and the ComfyUI version."""
    real, seen = mm.throw_exception_if_processing_interrupted, []

    def check():
        caller = sys._getframe(1).f_globals.get("__name__", "")
        if caller.endswith(PACK_CHECKERS):
            seen.append(caller)
            if len(seen) == n:
                mm.interrupt_current_processing(True)
        real()

    mm.throw_exception_if_processing_interrupted = check
    try:
        yield seen
    finally:
        mm.throw_exception_if_processing_interrupted = real
        mm.interrupt_current_processing(False)


def held_out_draws(seed: int, count: int, shape, settings, model_sampling):
    """Fixed (sigma, noise) pairs from the optimiser's own draw, for a loss that does not move with the run."""
    from reenact_core.inversion import draw_sigma_and_noise
    generator = torch.Generator().manual_seed(seed)
    return [draw_sigma_and_noise(generator, shape, settings, model_sampling) for _ in range(count)]


def evaluate_loss(model_patcher, reference_latents, condition_latent, tokens, settings, draws) -> float:
    """Mean denoising loss of fixed tokens over given (sigma, noise) draws, with no gradients."""
    from reenact_core.inversion import DenoisingObjective
    mm.load_models_gpu([model_patcher])
    objective = DenoisingObjective(model_patcher, reference_latents, condition_latent, settings)
    with torch.no_grad():
        conds = objective.model_conds(tokens.to(objective.device, torch.float32))
        return sum(objective.loss(conds, s, n).item() for s, n in draws) / len(draws)

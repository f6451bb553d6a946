"""Shared test helpers: SVD conditioning and sampling through ComfyUI's own nodes, the Optimize and Load Motion
Reference nodes' inputs, ComfyUI's Cancel at a chosen step (and the check that a cancelled Optimize run leaves the
MODEL as it was), and the held-out loss the inversion tests compare.

Helpers that need pytest or the in-process ComfyUI that conftest.py sets up live here; the rest are in
reenact_testkit/."""
import contextlib
import sys

import pytest
import torch

import comfy.model_management as mm

import nodes as comfy_nodes
from comfy_extras.nodes_video_model import SVD_img2vid_Conditioning

from reenact_core.motion_embedding import MotionEmbedding
from reenact_testkit.comfy_pack import run_node
from reenact_testkit.model_state import attachments, fixed_denoised_output


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


# LoadMotionReference's inputs for a 4-frame 64x64 read; add video (and video_input) and whatever else differs.
LOAD_REFERENCE_DEFAULTS = dict(start_frame=0, frame_count=4, stride=1, target_fps=0.0, width=64, height=64,
                               resize_mode="crop")


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


def cancel_node_run_at_step_two(model, vae, video, **options):
    """Cancel (ComfyUI's interrupt flag) during step 2 of an Optimize node run: it stops there, and the MODEL holds
    the same weight tensors, wrappers, flags and patches as before and gives bit-identical outputs."""
    before_output, before = fixed_denoised_output(model, video), attachments(model)
    with cancel_at_check(2) as seen, pytest.raises(mm.InterruptProcessingException):
        run_node("OptimizeMotionEmbedding", **optimize_inputs(model=model, vae=vae, reference=video["frames"],
                                                              init_embedding=MotionEmbedding(video["init"]),
                                                              steps=50, **options))
    assert len(seen) == 2
    assert attachments(model) == before
    assert torch.equal(fixed_denoised_output(model, video), before_output)


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

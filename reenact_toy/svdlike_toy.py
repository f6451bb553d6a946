"""The SVD-like toy: the first toy's ComfyUI SVD classes, trained as SVD was, with no motion token of any kind.

Conditioning is exactly what ComfyUI's SVD_img2vid_Conditioning node builds from the toy's CLIP vision
(toy_clip_vision) and VAE (toy_codec): the first frame's image embedding as the one cross-attention token of
every frame (the temporal blocks read the same token, as in SVD), the noise-augmented first-frame latent
concatenated, and fps, motion_bucket_id and the augmentation level as vector conditioning. Motion comes from
the noise. Weights: svdlike_toy_svd.safetensors beside this file (benchmarks/toy/train_svdlike_toy.py).
"""
import os

import torch

from . import toy_clip_vision, toy_codec, toy_svd, toy_world

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "svdlike_toy_svd.safetensors")


def load_svdlike_toy(path=FIXTURE, dtype=torch.float32):
    """The trained SVD-like toy as a ModelPatcher (same UNet config as the first toy)."""
    return toy_svd.load_toy_svd(path, dtype)


def first_frame_conditioning(clip_vision, images, augmentation):
    """(pooled (B, 1, D), concat latents (B, 4, h, w)) as SVD_img2vid_Conditioning makes them, batched.

    images: IMAGE (B, H, W, 3) in [0, 1], already at the video's size; augmentation: (B,) noise levels,
    added in pixel space before the VAE encode, as the node does.
    """
    pooled = clip_vision.encode_image(images).image_embeds.float().unsqueeze(1)
    noisy = images + torch.randn_like(images) * augmentation.view(-1, 1, 1, 1)
    concat = toy_codec.pixels_to_latents(noisy)
    return pooled, concat


def conditioning(clip_vision, first_frame_latent, tokens=None, fps=6, motion_bucket_id=127, frames=toy_world.FRAMES,
                 look=None):
    """Positive and negative for sampling the SVD-like toy from a first-frame latent, as a user's graph makes them:
    SVD_img2vid_Conditioning's (the frame's CLIP embedding, its latent concatenated; the negative all zeros), then
    the pack's Apply Motion Embedding transform when `tokens` (F+1, N, D) is given, else plain SVD conditioning;
    `look` (motion_conditioning.Look) handles the reference's look as Apply Motion Embedding does."""
    from reenact_core.motion_conditioning import conditioning_with_motion, positive_and_negative
    image = toy_codec.latents_to_pixels(first_frame_latent)
    pooled, concat = first_frame_conditioning(clip_vision, image, torch.zeros(1))
    opts = {"motion_bucket_id": motion_bucket_id, "fps": fps, "augmentation_level": 0.0}
    positive = [[pooled, dict(opts, concat_latent_image=concat)]]
    negative = [[torch.zeros_like(pooled), dict(opts, concat_latent_image=torch.zeros_like(concat))]]
    if tokens is None:
        return conditioning_with_motion(positive, frames), conditioning_with_motion(negative, frames)
    return positive_and_negative(positive, negative, tokens, frames, look=look)


def sample_video(patcher, clip_vision, first_frame_latent, tokens, seed, fps=6, motion_bucket_id=127,
                 frames=toy_world.FRAMES, steps=toy_svd.SAMPLE_STEPS, cfg=toy_svd.SAMPLE_CFG, look=None):
    """ComfyUI's own KSampler (euler, karras) on the SVD-like toy; returns (F, 4, H, W) LATENT units."""
    import nodes as comfy_nodes
    positive, negative = conditioning(clip_vision, first_frame_latent, tokens, fps, motion_bucket_id, frames, look)
    latent = {"samples": torch.zeros(frames, toy_world.CHANNELS, *first_frame_latent.shape[-2:])}
    with torch.inference_mode():
        out = comfy_nodes.common_ksampler(patcher, seed, steps, cfg, "euler", "karras", positive, negative, latent)
    return out[0]["samples"]


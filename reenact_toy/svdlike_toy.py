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


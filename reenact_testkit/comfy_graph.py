"""SVD conditioning, sampling and Apply Motion Embedding through ComfyUI's own nodes, as a user's graph runs them."""
import torch

import nodes as comfy_nodes
from comfy_extras.nodes_video_model import SVD_img2vid_Conditioning

from .comfy_pack import run_node


def svd_conditioning(clip_vision, vae, image, frames, size=64, fps=6, bucket=127, augmentation=0.0):
    """ComfyUI's SVD_img2vid_Conditioning node: (positive, negative, latent)."""
    with torch.inference_mode():
        return SVD_img2vid_Conditioning().encode(clip_vision, image, vae, size, size, frames, bucket, fps,
                                                 augmentation)


def sample(model, positive, negative, latent, seed=0, steps=4, cfg=2.5):
    """ComfyUI's own KSampler; returns the denoised latent samples."""
    with torch.inference_mode():
        out = comfy_nodes.common_ksampler(model, seed, steps, cfg, "euler", "karras", positive, negative, latent)
    return out[0]["samples"]


def apply_motion(positive, negative, embedding, latent, strength=1.0):
    """The pack's Apply Motion Embedding node: (positive, negative)."""
    return run_node("ApplyMotionEmbedding", positive=positive, negative=negative, motion_embedding=embedding,
                    latent=latent, strength=strength, use_embedding_fps_and_bucket=True)

"""The initial motion embedding, inflated from CLIP image embeddings of the reference frames.

Each frame slot starts as N copies of that frame's CLIP image embedding plus small seeded noise
(the copies would otherwise stay identical); the temporal slot starts from frame 0's.
"""
import torch

from .motion_conditioning import resample_frames


def encode_frames(clip_vision, frames: torch.Tensor) -> torch.Tensor:
    """(F, D) image embeddings. ComfyUI's CLIP vision takes IMAGE in [0, 1] and normalises itself."""
    return clip_vision.encode_image(frames.clamp(0, 1)).image_embeds.float().cpu()


def inflate(image_embeds: torch.Tensor, frames: int, tokens_per_frame: int,
            noise_scale: float, seed: int) -> torch.Tensor:
    """(frames+1, N, D) tokens from (F, D) embeddings; F is resampled to `frames` if it differs."""
    per_frame = resample_frames(image_embeds.unsqueeze(1), frames)
    slots = torch.cat([per_frame, per_frame[:1]]).expand(-1, tokens_per_frame, -1)
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(slots.shape, generator=generator)
    return slots + noise * (noise_scale * image_embeds.std())

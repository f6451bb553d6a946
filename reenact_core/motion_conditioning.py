"""The one conditioning transform shared by transfer and inversion (README, "How it works inside ComfyUI").

SVD's conditioning carries one pooled CLIP token. Here it becomes (frames, N, D) tokens, row f for
frame f's spatial cross-attention, plus a "time_conditioning" entry (1, N, D) that ComfyUI's
SVD_img2vid.extra_conds turns into the temporal blocks' context. No attention patch is needed.
"""
from dataclasses import dataclass

import torch

from .errors import ReenactError
from .motion_embedding import split_tokens


def resample_frames(spatial: torch.Tensor, frames: int) -> torch.Tensor:
    """Linearly resample (F, N, D) over time to (frames, N, D), end frames kept in place.

    ComfyUI would otherwise tile a short conditioning (repeat_to_batch_size), replaying the
    start of the motion; resampling stretches the motion over the new length instead.
    """
    f, n, d = spatial.shape
    if f == frames:
        return spatial
    if f == 1:
        return spatial.expand(frames, n, d)
    flat = spatial.reshape(f, n * d).t().unsqueeze(0)
    out = torch.nn.functional.interpolate(flat, size=frames, mode="linear", align_corners=True)
    return out.squeeze(0).t().reshape(frames, n, d)


SWAP_LOOK = "swap to the target's"
APPEARANCES = ("as learned", SWAP_LOOK)  # Apply Motion Embedding's `appearance`


def look_shift(target_token: torch.Tensor, reference_image: torch.Tensor) -> torch.Tensor:
    """The target's image embedding minus the reference's, (D,): added to every learned token, it swaps the reference's
    look for the target's by token arithmetic (the look swap at transfer; benchmarks/toy/README.md measures it)."""
    return target_token.reshape(-1) - reference_image.reshape(-1).to(target_token)


def motion_tokens(tokens: torch.Tensor, base_token: torch.Tensor, frames: int, strength: float,
                  shift: torch.Tensor | None = None):
    """Spatial (frames, N, D) and temporal (1, N, D) tokens for one conditioning entry.

    `shift` (D,), when given, is added to every token first (look_shift). strength blends from the entry's own
    pooled token (0: plain SVD, since N equal keys attend like one) to the motion tokens (1); values above 1
    extrapolate.
    """
    spatial, temporal = split_tokens(tokens)
    if shift is not None:
        spatial, temporal = spatial + shift.to(tokens), temporal + shift.to(tokens)
    spatial = resample_frames(spatial, frames)
    if strength != 1.0:
        base = base_token.reshape(1, 1, -1).to(tokens)
        spatial = base + strength * (spatial - base)
        temporal = base + strength * (temporal - base)
    return spatial, temporal


def _require_svd_entry(entry, index):
    cond, options = entry[0], entry[1]
    if "concat_latent_image" not in options or cond.ndim != 3:
        raise ReenactError(f"expected CONDITIONING from SVD_img2vid_Conditioning, got an entry {index} "
                           f"without concat_latent_image (keys: {sorted(options)})")


@dataclass(frozen=True)
class Look:
    """What the conditioning does with the reference's look. `reference_image` (D,): the reference's first-frame image
    embedding, kept in the motion file. `slot`: the embedding was learned with an appearance slot, one frozen image
    token beside the N learned ones in every slot (DreamVideo's idea), the reference's during inversion. `swap`: at
    transfer, put the target's look (the entry's own pooled token) in the reference's place: in the slot when there
    is one, else by token arithmetic (look_shift)."""
    reference_image: torch.Tensor
    swap: bool = False
    slot: bool = False

    @property
    def extra_tokens(self) -> int:
        return 1 if self.slot else 0


def conditioning_with_motion(conditioning, frames: int, tokens=None, token_count: int = 1,
                             strength: float = 1.0, overrides: dict | None = None, look: Look | None = None):
    """Return new SVD conditioning whose entries carry motion tokens; the input is not changed.

    tokens None gives each entry's own pooled token broadcast to (frames, token_count, D), which
    is what the negative needs so that cond and uncond batch together. `look` handles the reference's look (Look):
    a slot token appended to every slot's N tokens, or the look swapped by arithmetic.
    """
    out = []
    for i, entry in enumerate(conditioning):
        _require_svd_entry(entry, i)
        pooled, options = entry[0], dict(entry[1])
        if tokens is None:
            base = pooled.reshape(1, 1, -1)
            spatial = base.expand(frames, token_count, -1).clone()
            temporal = base.expand(1, token_count, -1).clone()
        else:
            if pooled.shape[-1] != tokens.shape[-1]:
                raise ReenactError(f"expected a motion embedding of dim {pooled.shape[-1]} to match the "
                                   f"conditioning's CLIP vision dim, got dim {tokens.shape[-1]}")
            arithmetic = look is not None and look.swap and not look.slot
            shift = look_shift(pooled[0, 0], look.reference_image) if arithmetic else None
            spatial, temporal = motion_tokens(tokens, pooled[0, 0], frames, strength, shift)
            if look is not None and look.slot:
                token = (pooled[0, 0] if look.swap else look.reference_image).reshape(1, 1, -1).to(spatial)
                spatial = torch.cat([spatial, token.expand(frames, 1, -1)], 1)
                temporal = torch.cat([temporal, token], 1)
        options["time_conditioning"] = temporal
        options.update(overrides or {})
        out.append([spatial, options])
    return out


def svd_base_conditioning(concat_latent: torch.Tensor, token_dim: int, fps: int, motion_bucket_id: int,
                          augmentation_level: float):
    """SVD conditioning as SVD_img2vid_Conditioning makes it, with a zero pooled token instead of the CLIP
    vision one: with strength 1 the motion tokens replace that token, and without CFG no negative runs, so
    inversion and the live preview need no CLIP vision model."""
    return [[torch.zeros(1, 1, token_dim, device=concat_latent.device),
             {"motion_bucket_id": motion_bucket_id, "fps": fps, "augmentation_level": augmentation_level,
              "concat_latent_image": concat_latent}]]


def positive_and_negative(positive, negative, tokens, frames, strength=1.0, overrides=None, look: Look | None = None):
    """Positive gets the motion (and `look`'s handling of the reference's look); negative gets its own token in the
    same shape."""
    pos = conditioning_with_motion(positive, frames, tokens, strength=strength, overrides=overrides, look=look)
    neg = conditioning_with_motion(negative, frames, None, overrides=overrides,
                                   token_count=tokens.shape[1] + (look.extra_tokens if look else 0))
    return pos, neg

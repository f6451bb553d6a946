"""The MOTION_EMBEDDING value: (F+1) x N x D tokens plus metadata.

Slot f < F holds the N tokens frame f's spatial cross-attention sees; slot F holds the N tokens
the temporal blocks see, shared by all frames (README, "How it works inside ComfyUI"). `split_tokens`
is the one place that layout is read. `reference_image` is the reference's first-frame CLIP image embedding (D,),
kept so that transfer can swap the reference's look for the target's (motion_conditioning.look_shift); embeddings
made before it existed have none.
"""
from dataclasses import dataclass, field

import torch

from .errors import ReenactError


def split_tokens(tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(F+1, N, D) -> spatial (F, N, D), row f for frame f, and temporal (1, N, D) for the temporal blocks.
    Works on a live tensor (the optimiser's) as well as a saved one: views, so gradients flow through."""
    return tokens[:-1], tokens[-1:]


@dataclass(frozen=True)
class MotionEmbedding:
    tokens: torch.Tensor
    metadata: dict = field(default_factory=dict)
    reference_image: torch.Tensor | None = None

    def __post_init__(self):
        t = self.tokens
        if not isinstance(t, torch.Tensor) or t.ndim != 3 or t.shape[0] < 2 or t.shape[1] < 1:
            shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise ReenactError(f"expected motion tokens of shape (frames+1, tokens, dim) with at least "
                               f"one frame, got {shape}")
        if not torch.isfinite(t).all():
            raise ReenactError("motion tokens contain NaN or infinite values")
        r = self.reference_image
        if r is not None and (not isinstance(r, torch.Tensor) or tuple(r.shape) != (t.shape[2],)):
            shape = tuple(r.shape) if isinstance(r, torch.Tensor) else type(r).__name__
            raise ReenactError(f"expected the reference's image embedding of shape ({t.shape[2]},) to match the "
                               f"tokens' dim, got {shape}")

    @property
    def frames(self) -> int:
        return self.tokens.shape[0] - 1

    @property
    def tokens_per_frame(self) -> int:
        return self.tokens.shape[1]

    @property
    def dim(self) -> int:
        return self.tokens.shape[2]

    def replace(self, tokens=None, /, **metadata) -> "MotionEmbedding":
        """New tokens (or the same) with metadata updated; positional tokens, so any metadata key is allowed."""
        merged = dict(self.metadata)
        merged.update(metadata)
        return MotionEmbedding(self.tokens if tokens is None else tokens, merged, self.reference_image)

    def __repr__(self):
        return (f"MotionEmbedding(frames={self.frames}, tokens={self.tokens_per_frame}, "
                f"dim={self.dim}, steps={self.metadata.get('steps', 0)})")

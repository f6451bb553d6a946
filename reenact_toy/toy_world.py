"""A toy world where motion is known: blob videos in SVD latent space, their motion tokens, and a tracker.

Why: real SVD weights cannot be downloaded here, so whether inversion recovers and transfers motion
is proven on a small SVD trained on videos whose motion is known exactly. The toy keeps SVD's
division of labour: appearance (blob colour, size, start position) comes only from the first
frame (`concat_latent_image`); motion comes only from per-frame cross-attention tokens
(`c_crossattn`, one row per frame) plus one temporal token (`time_conditioning`).

Videos are made directly in latent space (4 channels, no VAE). `make_video` returns ComfyUI LATENT
values (what KSampler returns); the model sees them after `process_latent_in` (x 0.18215), where
the blob peaks at 1.5 to 3 per channel, so the video's variance is near SVD's sigma_data of 1.

Motion token of frame f: a fixed encoding of the blob's offset from its frame-0 position (radial
basis features on x and on y, mapped to the context dim by a fixed seeded orthonormal matrix).
Encoding the offset (not the velocity) lets every frame be rendered from its own token, and makes
per-frame changes (stop-and-go) expressible, which one token shared by all frames cannot.
"""
import math
from dataclasses import dataclass

import torch

LATENT_SCALE = 0.18215          # SD1.5/SVD latent_format.scale_factor: model space = latent * this
SIZE = 12                       # latent height and width
FRAMES = 8
CHANNELS = 4
CONTEXT_DIM = 64
MARGIN = 2.0                    # blob centre stays this far from the border on every frame
RBF_CENTRES = torch.arange(-7.0, 7.01, 1.0)
RBF_WIDTH = 0.6
TOKEN_SCALE = 4.0
ENCODER_SEED = 1234

KINDS = ("linear", "stop_and_go", "circle", "bounce")
KIND_WEIGHTS = (0.35, 0.25, 0.2, 0.2)
DIRECTIONS = 8                  # linear, stop-and-go and bounce move along one of 8 compass directions
SPEEDS = (0.5, 1.0)             # latent pixels per frame


@dataclass
class ToyVideo:
    latents: torch.Tensor       # (F, 4, H, W), ComfyUI LATENT units
    path: torch.Tensor          # (F, 2) blob centre (x, y) per frame, pixels
    colour: torch.Tensor        # (4,) blob colour in model space
    kind: str
    label: str                  # human-readable motion description


def _direction(index):
    angle = 2 * math.pi * index / DIRECTIONS
    return torch.tensor([math.cos(angle), math.sin(angle)])


def motion_offsets(kind, gen, frames=FRAMES):
    """(F, 2) offsets from the frame-0 position for one motion of `kind`, and a label."""
    t = torch.arange(frames, dtype=torch.float32)
    d_index = int(torch.randint(DIRECTIONS, (), generator=gen))
    speed = SPEEDS[int(torch.randint(len(SPEEDS), (), generator=gen))]
    d = _direction(d_index) * speed
    if kind == "linear":
        return t[:, None] * d, f"linear dir{d_index} v{speed}"
    if kind == "stop_and_go":
        # each step moves or not; at least two moves and two stops, so no single velocity fits
        while True:
            moves = torch.rand(frames - 1, generator=gen) < 0.5
            if 2 <= int(moves.sum()) <= min(4, frames - 3):
                break
        dist = torch.cat([torch.zeros(1), torch.cumsum(moves.float(), 0)]) * speed * 1.5
        pattern = "".join("m" if m else "s" for m in moves.tolist())
        return dist[:, None] * d / speed, f"stop_and_go dir{d_index} v{speed * 1.5} {pattern}"
    if kind == "circle":
        radius = 1.5 + 0.5 * float(torch.rand((), generator=gen))
        phase = 2 * math.pi * float(torch.rand((), generator=gen))
        sense = 1.0 if float(torch.rand((), generator=gen)) < 0.5 else -1.0
        angle = phase + sense * 2 * math.pi * t / frames
        pos = radius * torch.stack([torch.cos(angle), torch.sin(angle)], 1)
        return pos - pos[:1], f"circle r{radius:.2f} {'ccw' if sense > 0 else 'cw'}"
    if kind == "bounce":
        # out and back: reverses at a turn frame, as off an invisible wall
        turn = int(torch.randint(2, frames - 2, (), generator=gen))
        dist = torch.where(t <= turn, t, 2 * turn - t) * 1.0
        return dist[:, None] * d, f"bounce dir{d_index} v{speed} turn{turn}"
    raise ValueError(f"expected a motion kind in {KINDS}, got {kind!r}")


def render(path, colour, width, size=SIZE):
    """(F, 4, H, W) model-space frames: a Gaussian blob of `colour` centred on each row of `path`."""
    coords = torch.arange(size, dtype=torch.float32)
    dx = coords[None, None, :] - path[:, 0, None, None]
    dy = coords[None, :, None] - path[:, 1, None, None]
    blob = torch.exp(-(dx ** 2 + dy ** 2) / (2 * width ** 2))
    return blob[:, None] * colour[None, :, None, None]


def random_colour(gen):
    """A colour in model space with clear magnitude: random signs, |channel| in [1.5, 3].

    Strong colours keep the video's variance near the EDM sigma_data of 1 that SVD's
    preconditioning assumes; faint blobs (|channel| ~ 1) left the motion a small part of the loss.
    """
    mag = 1.5 + 1.5 * torch.rand(CHANNELS, generator=gen)
    sign = torch.where(torch.rand(CHANNELS, generator=gen) < 0.5, -1.0, 1.0)
    return mag * sign


def make_video(gen, kind=None, offsets=None, frames=FRAMES, size=SIZE):
    """One video: random appearance (colour, width, start) and a motion of `kind` (or given offsets)."""
    if offsets is None:
        if kind is None:
            kind = KINDS[int(torch.multinomial(torch.tensor(KIND_WEIGHTS), 1, generator=gen))]
        offsets, label = motion_offsets(kind, gen, frames)
    else:
        kind, label = kind or "given", "given"
    colour = random_colour(gen)
    width = 1.0 + 0.6 * float(torch.rand((), generator=gen))
    low = MARGIN - offsets.min(0).values
    high = size - 1 - MARGIN - offsets.max(0).values
    start = low + (high - low).clamp(min=0) * torch.rand(2, generator=gen)
    path = start[None] + offsets
    latents = render(path, colour, width, size) / LATENT_SCALE
    return ToyVideo(latents, path, colour, kind, label)


def make_videos(count, seed, kind=None):
    gen = torch.Generator().manual_seed(seed)
    return [make_video(gen, kind) for _ in range(count)]


_ENCODER = None


def _encoder():
    """Fixed seeded orthonormal map from the 2 x len(RBF_CENTRES) features to CONTEXT_DIM."""
    global _ENCODER
    if _ENCODER is None:
        gen = torch.Generator().manual_seed(ENCODER_SEED)
        q, _ = torch.linalg.qr(torch.randn(CONTEXT_DIM, 2 * len(RBF_CENTRES), generator=gen))
        _ENCODER = q.t().contiguous()
    return _ENCODER


def offset_tokens(path):
    """(F, 1, D) ground-truth motion tokens: frame f's offset from frame 0, RBF-encoded on x and y."""
    offsets = path - path[:1]
    feats = [torch.exp(-(offsets[:, i, None] - RBF_CENTRES[None]) ** 2 / (2 * RBF_WIDTH ** 2)) for i in (0, 1)]
    return (TOKEN_SCALE * torch.cat(feats, 1) @ _encoder())[:, None, :]


def motion_embedding_tokens(path):
    """(F+1, 1, D) tokens in the pack's MotionEmbedding layout: F frame slots, then the temporal slot.

    The temporal slot is the mean of the frame tokens: a summary of the whole motion, read by the
    temporal blocks, as SVD's temporal blocks read the same CLIP token as the spatial ones.
    """
    frame_tokens = offset_tokens(path)
    return torch.cat([frame_tokens, frame_tokens.mean(0, keepdim=True)], 0)


def track(latents, colour, power=2.0):
    """(F, 2) blob centre per frame: centroid of the pixels' positive projection on the blob colour.

    Raising the weights to `power` keeps leftover noise far from the blob from pulling the
    centroid towards the image centre. Works on LATENT units; `colour` is in model space.
    """
    x = latents * LATENT_SCALE
    w = torch.einsum("fchw,c->fhw", x, colour / colour.dot(colour)).clamp(min=0) ** power
    h, wd = x.shape[-2:]
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(wd, dtype=torch.float32),
                            indexing="ij")
    total = w.sum((1, 2)).clamp(min=1e-8)
    return torch.stack([(w * xs).sum((1, 2)) / total, (w * ys).sum((1, 2)) / total], 1)


# "Matches": the tracked path stays close to the ground truth on average and at the end.
MATCH_MEAN_ERROR = 0.75         # pixels, mean over frames 1..F-1
MATCH_END_ERROR = 1.0           # pixels, last frame


def motion_errors(tracked, truth):
    """(mean error over frames 1.., endpoint error), both in latent pixels."""
    err = (tracked - truth).norm(dim=1)
    return float(err[1:].mean()), float(err[-1])


def matches(tracked, truth):
    mean_err, end_err = motion_errors(tracked, truth)
    return mean_err < MATCH_MEAN_ERROR and end_err < MATCH_END_ERROR

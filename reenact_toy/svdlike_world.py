"""The SVD-like toy's videos: blob motions drawn as a distribution given the first frame, with no motion token.

Why: SVD was trained on videos alone. Its conditioning says what the first frame looks like (a CLIP image
embedding, the noise-augmented first-frame latent) and how much it moves (fps, motion_bucket_id), never which
way; motion comes from the noise. This world gives the toy the same task: from one blob frame, produce any
of many plausible motions. It reuses the first toy's blob, renderer and tracker (toy_world) and adds kinds and
speeds. Some kinds are held out of training, so inversion can be tested on motions the model never produced.

Speed is latent pixels per frame; the motion bucket is derived from it as optical flow gives SVD's
(127 = 1 px per frame, SVD's default bucket).
"""
import math

import torch

from . import toy_codec, toy_world
from .toy_world import FRAMES, MARGIN, SIZE

TRAIN_KINDS = ("linear", "stop_and_go", "circle", "bounce", "zigzag", "accelerate", "arc", "wiggle")
TRAIN_WEIGHTS = (0.2, 0.15, 0.12, 0.12, 0.1, 0.1, 0.11, 0.1)
HELD_OUT_KINDS = ("square", "spiral", "figure_eight")
SPEEDS = (0.25, 0.5, 1.0, 1.5)
FPS_CHOICES = (4, 6, 8, 12)
BUCKET_PER_PX = 127.0


def motion_bucket(offsets: torch.Tensor) -> int:
    """SVD-style motion_bucket_id from the mean per-frame displacement (px): 1 px per frame -> 127."""
    speed = float((offsets[1:] - offsets[:-1]).norm(dim=1).mean())
    return int(max(0, min(255, round(speed * BUCKET_PER_PX))))


def _unit(angle):
    return torch.tensor([math.cos(angle), math.sin(angle)])


def offsets_for(kind: str, gen: torch.Generator, frames: int = FRAMES):
    """(F, 2) offsets from frame 0 for one motion of `kind` (any direction, one of SPEEDS), and a label."""
    t = torch.arange(frames, dtype=torch.float32)
    angle = 2 * math.pi * float(torch.rand((), generator=gen))
    speed = SPEEDS[int(torch.randint(len(SPEEDS), (), generator=gen))]
    d, n = _unit(angle) * speed, _unit(angle + math.pi / 2)
    sense = 1.0 if float(torch.rand((), generator=gen)) < 0.5 else -1.0
    label = f"{kind} a{math.degrees(angle):.0f} v{speed}"
    if kind == "linear":
        return t[:, None] * d, label
    if kind == "stop_and_go":
        while True:
            moves = torch.rand(frames - 1, generator=gen) < 0.5
            if 2 <= int(moves.sum()) <= min(4, frames - 3):
                break
        dist = torch.cat([torch.zeros(1), torch.cumsum(moves.float(), 0)]) * 1.5
        return dist[:, None] * d, label + " " + "".join("m" if m else "s" for m in moves.tolist())
    if kind == "bounce":
        turn = int(torch.randint(2, frames - 2, (), generator=gen))
        return torch.where(t <= turn, t, 2 * turn - t)[:, None] * d, f"{label} turn{turn}"
    if kind == "accelerate":
        # from rest to twice the speed, or the reverse: same mean speed
        ramp = t ** 2 / (frames - 1) if sense > 0 else 2 * t - t ** 2 / (frames - 1)
        return ramp[:, None] * d, label + (" speeding" if sense > 0 else " slowing")
    if kind == "zigzag":
        side = torch.tensor([0.0 if i == 0 else (1.0 if i % 2 else -1.0) for i in range(frames)]) * 0.6 * speed
        return t[:, None] * d * 0.8 + side[:, None] * n, label
    if kind == "wiggle":
        # oscillation in place along one direction, two periods
        return torch.sin(2 * math.pi * 2 * t / frames)[:, None] * d * 1.2, label
    if kind in ("circle", "arc"):
        turn = 1.0 if kind == "circle" else 0.4 + 0.3 * float(torch.rand((), generator=gen))
        radius = max(0.6, speed * frames / (2 * math.pi * turn))
        radius = min(radius, 3.0)
        a = angle + sense * 2 * math.pi * turn * t / frames
        pos = radius * torch.stack([torch.cos(a), torch.sin(a)], 1)
        return pos - pos[:1], f"{label} r{radius:.2f} {'ccw' if sense > 0 else 'cw'}"
    if kind == "square":
        # held out: straight, then a right-angle turn at the middle frame
        half = frames // 2
        leg1 = torch.clamp(t, max=half)[:, None] * d
        leg2 = torch.clamp(t - half, min=0)[:, None] * n * sense * speed
        return leg1 + leg2, label
    if kind == "spiral":
        # held out: a circle whose radius grows from zero
        radius = torch.linspace(0.0, min(3.0, 0.8 + 1.5 * speed), frames)
        a = angle + sense * 2 * math.pi * t / frames
        pos = radius[:, None] * torch.stack([torch.cos(a), torch.sin(a)], 1)
        return pos - pos[:1], label
    if kind == "figure_eight":
        # held out: a lemniscate, one loop each side
        size = min(3.0, 1.0 + speed)
        a = 2 * math.pi * t / frames
        local = torch.stack([size * torch.sin(a), 0.6 * size * torch.sin(2 * a)], 1)
        return local[:, :1] * _unit(angle) + local[:, 1:] * n, label
    raise ValueError(f"expected a motion kind in {TRAIN_KINDS + HELD_OUT_KINDS}, got {kind!r}")


def fit_in_frame(offsets: torch.Tensor, size: int = SIZE) -> torch.Tensor:
    """Offsets shrunk, where needed, so that the whole path stays MARGIN inside the frame (fast, long paths)."""
    room = size - 1 - 2 * MARGIN
    extent = float((offsets.max(0).values - offsets.min(0).values).max())
    return offsets * min(1.0, room / extent) if extent > 0 else offsets


def make_video(gen: torch.Generator, kind: str | None = None, frames: int = FRAMES, size: int = SIZE):
    """One video (ToyVideo) and its vector conditioning: (video, fps, motion_bucket_id).

    The bucket is measured on the path as rendered, after fit_in_frame."""
    if kind is None:
        kind = TRAIN_KINDS[int(torch.multinomial(torch.tensor(TRAIN_WEIGHTS), 1, generator=gen))]
    offsets, label = offsets_for(kind, gen, frames)
    offsets = fit_in_frame(offsets, size)
    video = toy_world.make_video(gen, kind=kind, offsets=offsets, frames=frames, size=size)  # appearance, start
    video.label = label
    fps = FPS_CHOICES[int(torch.randint(len(FPS_CHOICES), (), generator=gen))]
    return video, fps, motion_bucket(offsets)


def over_a_scene(video, gen: torch.Generator, size: int = SIZE):
    """The video over a static scene of its own: a colour gradient and a second blob that does not move.

    Why: a lever on appearance leakage (benchmarks/toy/README.md, "Levers on the model"). On the plain world the image
    token carries one blob's look and nothing else; with a scene it has more to say than the moving blob's colour,
    as SVD's CLIP embedding does. The scene is added in model space to every frame; `path` and `colour` still
    describe the moving blob. Clamped to what the toy codec can show, so the conditioning sees the video itself.
    """
    coords = torch.linspace(-1.0, 1.0, size)
    base, slope_x, slope_y = (torch.rand(3, toy_world.CHANNELS, generator=gen) * 2 - 1) * torch.tensor(
        [0.6, 0.4, 0.4])[:, None]
    scene = (base[:, None, None] + slope_x[:, None, None] * coords[None, None, :]
             + slope_y[:, None, None] * coords[None, :, None])
    still = torch.rand(2, generator=gen) * (size - 1)
    width = 1.0 + 0.6 * float(torch.rand((), generator=gen))
    scene = scene + toy_world.render(still[None], 0.6 * toy_world.random_colour(gen), width, size)[0]
    limit = toy_codec.LATENT_PER_UNIT
    video.latents = (video.latents + scene[None] / toy_world.LATENT_SCALE).clamp(-limit, limit)
    video.label += " on a scene"
    return video


def make_videos(count: int, seed: int, kind: str | None = None):
    gen = torch.Generator().manual_seed(seed)
    return [make_video(gen, kind) for _ in range(count)]

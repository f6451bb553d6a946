"""Appearance augmentation for inversion: copies of the reference that move alike and look different.

Why: tokens learned on one look can bind the motion to that look, so the motion does not carry to a subject that looks
otherwise (benchmarks/toy/README.md, "Levers against a motion bound to the reference's look"). Each copy gets one
random change, applied alike to every frame, and its conditioning frame is that copy's changed frame 0: the motion is
the same in every copy, only the look differs, so the tokens cannot lean on the look. The changes are colour (hue,
saturation, brightness, contrast, grey) and geometry that keeps relative motion (one zoom and one shift for the whole
clip). They are made in pixel space, before the VAE, as a user's video is encoded; the copies are encoded once, before
the first step, so a step costs what it costs without them.

The draws come from a generator seeded by the run's seed alone, so a resumed run (which keeps its checkpoint's seed)
makes the same copies; which copy a step uses is drawn from the run's own generator, whose state the checkpoint holds.
"""
import math
from dataclasses import dataclass

import torch
import torchvision.transforms.functional as TF

from .clip_init import encode_frames
from .errors import ReenactError
from .svd_latents import encode_reference

AUGMENT_CHANGES = ("colour and geometry", "colour", "geometry")
AUGMENT_SEED_OFFSET = 0xA5E7  # the copies' generator: the run's seed plus this, apart from training's and held-out's
# The widest change of each kind at strength 1; a strength s scales each range (zoom and factors in log space).
MAX_HUE_TURN = 0.5  # a hue rotation of up to half a turn either way
MAX_LOG_SATURATION = math.log(2.0)
MAX_LOG_BRIGHTNESS = math.log(1.25)
MAX_LOG_CONTRAST = math.log(1.5)
MAX_GREY_CHANCE = 0.2  # the chance that a copy is made grey
MAX_LOG_ZOOM = math.log(1.5)  # zoom in or out by up to 1.5x about the centre
MAX_SHIFT = 0.15  # a shift of up to this share of the side, on each axis
MIN_LATENT_SIDE = 8  # what a zoomed-out copy must keep of each side, in latent pixels: SVD's UNet halves it 3 times
LATENT_PIXELS = 8  # pixels per latent pixel (SVD's VAE)


def widest_changes() -> str:
    """The ranges at strength 1, in words (Optimize Motion Embedding's tooltip): the constants above, not a copy."""
    def factor(log_max):
        return f"x{math.exp(-log_max):.2f}-{math.exp(log_max):.2f}"
    return (f"a hue rotation of up to {MAX_HUE_TURN:g} turn either way, saturation {factor(MAX_LOG_SATURATION)}, "
            f"brightness {factor(MAX_LOG_BRIGHTNESS)}, contrast {factor(MAX_LOG_CONTRAST)}, a {MAX_GREY_CHANCE:.0%} "
            f"chance of grey, zoom {factor(MAX_LOG_ZOOM)} and a shift of up to {MAX_SHIFT:.0%} of the side")


@dataclass(frozen=True)
class AppearanceChange:
    """One copy's change: colour factors (1 = unchanged), a hue rotation in turns, grey or not, and a zoom about the
    centre with a shift given as shares of the width and height (positive: right and down)."""
    hue: float = 0.0
    saturation: float = 1.0
    brightness: float = 1.0
    contrast: float = 1.0
    grey: bool = False
    zoom: float = 1.0
    shift_x: float = 0.0
    shift_y: float = 0.0


def draw_changes(count: int, strength: float, changes: str, seed: int) -> list[AppearanceChange]:
    """`count` changes of `strength` (0 to 1) of the kinds `changes` names (AUGMENT_CHANGES); every copy draws the
    same numbers whatever `changes` keeps, so a colour-only run's colours are those of the combined run's copies."""
    if changes not in AUGMENT_CHANGES:
        raise ReenactError(f"expected augment_changes in {', '.join(AUGMENT_CHANGES)}, got {changes!r}")
    generator = torch.Generator().manual_seed((seed + AUGMENT_SEED_OFFSET) % 2 ** 64)
    colour, geometry = changes != "geometry", changes != "colour"
    out = []
    for _ in range(count):
        u = (torch.rand(8, generator=generator) * 2 - 1).tolist()  # eight uniform draws in [-1, 1]
        grey = (u[4] + 1) / 2 < MAX_GREY_CHANCE * strength
        out.append(AppearanceChange(
            **(dict(hue=u[0] * MAX_HUE_TURN * strength, saturation=math.exp(u[1] * MAX_LOG_SATURATION * strength),
                    brightness=math.exp(u[2] * MAX_LOG_BRIGHTNESS * strength),
                    contrast=math.exp(u[3] * MAX_LOG_CONTRAST * strength), grey=grey) if colour else {}),
            **(dict(zoom=math.exp(u[5] * MAX_LOG_ZOOM * strength), shift_x=u[6] * MAX_SHIFT * strength,
                    shift_y=u[7] * MAX_SHIFT * strength) if geometry else {})))
    return out


def _zoom_and_shift(images: torch.Tensor, change: AppearanceChange) -> torch.Tensor:
    """(F, 3, H, W) zoomed by `zoom` about the centre, then shifted; what comes in at the edges repeats the edge."""
    if change.zoom == 1.0 and change.shift_x == 0.0 and change.shift_y == 0.0:
        return images
    # affine_grid maps each output position to the input position it reads, in [-1, 1] coordinates (2 = the side).
    theta = torch.tensor([[1 / change.zoom, 0.0, -2 * change.shift_x / change.zoom],
                          [0.0, 1 / change.zoom, -2 * change.shift_y / change.zoom]], dtype=images.dtype)
    grid = torch.nn.functional.affine_grid(theta.expand(images.shape[0], 2, 3), list(images.shape),
                                           align_corners=False)
    return torch.nn.functional.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def apply_change(frames: torch.Tensor, change: AppearanceChange) -> torch.Tensor:
    """IMAGE frames (F, H, W, 3) in [0, 1] with one change applied alike to every frame; a new tensor."""
    images = _zoom_and_shift(frames[..., :3].movedim(-1, 1).float(), change)
    if change.grey:
        images = TF.rgb_to_grayscale(images, num_output_channels=3)
    elif change.saturation != 1.0:
        images = TF.adjust_saturation(images, change.saturation)
    if change.hue != 0.0 and not change.grey:
        images = TF.adjust_hue(images, change.hue)
    if change.brightness != 1.0:
        images = TF.adjust_brightness(images, change.brightness)
    if change.contrast != 1.0:  # about the clip's mean grey (torchvision's adjust_contrast takes each frame's own)
        mean = TF.rgb_to_grayscale(images).mean()
        images = images * change.contrast + mean * (1 - change.contrast)
    return images.clamp(0, 1).movedim(1, -1).contiguous()


def geometry_problem(width: int, height: int, strength: float, changes: str, copies: int) -> str | None:
    """A zoomed-out copy must keep MIN_LATENT_SIDE latent pixels of each side, or SVD's UNet has nothing to halve."""
    if copies <= 0 or changes == "colour" or strength <= 0:
        return None
    widest = math.exp(MAX_LOG_ZOOM * strength)
    needed = math.ceil(MIN_LATENT_SIDE * LATENT_PIXELS * widest)
    if min(width, height) < needed:
        return (f"expected a reference of at least {needed} px on its shorter side for geometry augmentation at "
                f"augment_strength {strength:g} (a copy may be zoomed out {widest:.2f}x and must keep "
                f"{MIN_LATENT_SIDE * LATENT_PIXELS} px), got {width}x{height}; lower augment_strength or set "
                f"augment_changes to colour")
    return None


def encode_appearance_copies(vae, frames: torch.Tensor, copies: int, strength: float, changes: str, seed: int,
                             augmentation_level: float = 0.0, clip_vision=None) -> list[tuple]:
    """(latents, conditioning latent, image embedding or None) of each changed copy, encoded one copy at a time (one
    copy's pixels in memory). The image embedding is the CLIP vision embedding of the copy's changed frame 0, made
    when `clip_vision` is given: the appearance slot then holds each copy's own look."""
    out = []
    with torch.no_grad():  # constants of the run: no graph back into the VAE or the CLIP vision model
        for change in draw_changes(copies, strength, changes, seed):
            changed = apply_change(frames, change)
            latents, condition = encode_reference(vae, changed, augmentation_level, seed)
            out.append((latents, condition, encode_frames(clip_vision, changed[:1])[0] if clip_vision else None))
    return out


def appearance_copies_for(vae, frames: torch.Tensor, settings, clip_vision=None) -> list[tuple]:
    """The copies an inversion with `settings` (InversionSettings) trains on; [] when augmentation is off. What
    Optimize Motion Embedding and the SVD-like benchmark both call. `clip_vision` only serves the appearance slot."""
    if settings.augment_copies <= 0:
        return []
    return encode_appearance_copies(vae, frames, settings.augment_copies, settings.augment_strength,
                                    settings.augment_changes, settings.seed, settings.augmentation_level,
                                    clip_vision if settings.appearance_slot else None)

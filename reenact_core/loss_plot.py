"""The loss curve as an IMAGE, drawn with Pillow (which ComfyUI already needs) so no plotting library is needed."""
import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

BLACK, GREY, ORANGE = (0, 0, 0), (180, 180, 180), (255, 128, 0)


def smooth(values, window: int):
    if len(values) < 3 or window <= 1:
        return np.asarray(values, dtype=np.float64)
    window = min(window, len(values))
    kernel = np.ones(window) / window
    padded = np.pad(np.asarray(values, dtype=np.float64), (window // 2, window - 1 - window // 2), mode="edge")
    return np.convolve(padded, kernel, mode="valid")


def font(size: int):
    """Pillow's bundled font at a pixel size; older Pillow (before 10.1) has only its fixed small bitmap font."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:
        return ImageFont.load_default()


def loss_curve_image(losses, width: int = 512, height: int = 256) -> torch.Tensor:
    """IMAGE (1, H, W, 3): raw loss in grey, moving average in orange, log-scaled y axis."""
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    margin = 40
    draw.rectangle((margin, 10, width - 10, height - margin), outline=BLACK, width=1)
    if len(losses) > 0:
        raw = np.log10(np.maximum(np.asarray(losses, dtype=np.float64), 1e-12))
        avg = smooth(raw, max(1, len(raw) // 20))
        lo, hi = float(raw.min()), float(raw.max())
        span = hi - lo if hi > lo else 1.0
        xs = margin + np.linspace(0, width - 10 - margin, num=len(raw))
        for series, colour, thick in ((raw, GREY, 1), (avg, ORANGE, 2)):
            ys = (height - margin) - (series - lo) / span * (height - margin - 10)
            points = [tuple(p) for p in np.stack([xs, ys], axis=1).round().tolist()]
            draw.line(points if len(points) > 1 else points * 2, fill=colour, width=thick, joint="curve")
        small, label = font(10), font(12)
        draw.text((2, 20), f"{10 ** hi:.3g}", fill=BLACK, font=small, anchor="ls")
        draw.text((2, height - margin), f"{10 ** lo:.3g}", fill=BLACK, font=small, anchor="ls")
        draw.text((margin, height - 14), f"step {len(raw)}   last {losses[-1]:.4g}", fill=BLACK, font=label,
                  anchor="ls")
    return torch.from_numpy(np.array(canvas)).float().div(255.0).unsqueeze(0)

"""The loss curve as an IMAGE, drawn with Pillow (which ComfyUI already needs) so no plotting library is needed."""
import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

BLACK, GREY, ORANGE, BLUE = (0, 0, 0), (180, 180, 180), (255, 128, 0), (30, 90, 220)


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


def loss_curve_image(losses, width: int = 512, height: int = 256, held_out=(), stopped_at: int | None = None
                     ) -> torch.Tensor:
    """IMAGE (1, H, W, 3): raw loss in grey, moving average in orange, the held-out loss [(step, loss), ...] in blue
    dots, log-scaled y axis; a run that stopped early says so under the plot."""
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    margin = 40
    draw.rectangle((margin, 10, width - 10, height - margin), outline=BLACK, width=1)
    if len(losses) > 0:
        raw = np.log10(np.maximum(np.asarray(losses, dtype=np.float64), 1e-12))
        avg = smooth(raw, max(1, len(raw) // 20))
        held = [(step, np.log10(max(loss, 1e-12))) for step, loss in held_out if loss is not None and np.isfinite(loss)]
        lo = min([float(raw.min()), *(v for _, v in held)])
        hi = max([float(raw.max()), *(v for _, v in held)])
        span = hi - lo if hi > lo else 1.0
        plot_width = width - 10 - margin

        def x_of(step):  # step 1 at the left edge, the last step at the right
            return margin + plot_width * min(max(step - 1, 0) / max(len(raw) - 1, 1), 1.0)

        def y_of(value):
            return (height - margin) - (value - lo) / span * (height - margin - 10)

        xs = margin + np.linspace(0, plot_width, num=len(raw))
        for series, colour, thick in ((raw, GREY, 1), (avg, ORANGE, 2)):
            points = [tuple(p) for p in np.stack([xs, y_of(series)], axis=1).round().tolist()]
            draw.line(points if len(points) > 1 else points * 2, fill=colour, width=thick, joint="curve")
        for step, value in held:
            x, y = x_of(step), y_of(value)
            draw.ellipse((x - 3, y - 3, x + 3, y + 3), fill=BLUE)
        small, label = font(10), font(12)
        draw.text((2, 20), f"{10 ** hi:.3g}", fill=BLACK, font=small, anchor="ls")
        draw.text((2, height - margin), f"{10 ** lo:.3g}", fill=BLACK, font=small, anchor="ls")
        caption = f"step {len(raw)}   last {losses[-1]:.4g}"
        if held:
            caption += f"   held-out {10 ** held[-1][1]:.4g} (blue)"
        if stopped_at is not None:
            caption += f"   stopped at {stopped_at}"
        draw.text((margin, height - 14), caption, fill=BLACK, font=label, anchor="ls")
    return torch.from_numpy(np.array(canvas)).float().div(255.0).unsqueeze(0)

"""The loss curve as an IMAGE, drawn with OpenCV so no plotting library is needed."""
import cv2
import numpy as np
import torch


def smooth(values, window: int):
    if len(values) < 3 or window <= 1:
        return np.asarray(values, dtype=np.float64)
    window = min(window, len(values))
    kernel = np.ones(window) / window
    padded = np.pad(np.asarray(values, dtype=np.float64), (window // 2, window - 1 - window // 2), mode="edge")
    return np.convolve(padded, kernel, mode="valid")


def loss_curve_image(losses, width: int = 512, height: int = 256) -> torch.Tensor:
    """IMAGE (1, H, W, 3): raw loss in grey, moving average in orange, log-scaled y axis."""
    canvas = np.full((height, width, 3), 255, np.uint8)
    margin = 40
    cv2.rectangle(canvas, (margin, 10), (width - 10, height - margin), (0, 0, 0), 1)
    if len(losses) > 0:
        raw = np.log10(np.maximum(np.asarray(losses, dtype=np.float64), 1e-12))
        avg = smooth(raw, max(1, len(raw) // 20))
        lo, hi = float(raw.min()), float(raw.max())
        span = hi - lo if hi > lo else 1.0
        xs = margin + np.linspace(0, width - 10 - margin, num=len(raw))
        for series, colour, thick in ((raw, (180, 180, 180), 1), (avg, (255, 128, 0), 2)):
            ys = (height - margin) - (series - lo) / span * (height - margin - 10)
            points = np.stack([xs, ys], axis=1).round().astype(np.int32).reshape(-1, 1, 2)
            cv2.polylines(canvas, [points], False, colour, thick, cv2.LINE_AA)
        font = cv2.FONT_HERSHEY_SIMPLEX
        cv2.putText(canvas, f"{10 ** hi:.3g}", (2, 20), font, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(canvas, f"{10 ** lo:.3g}", (2, height - margin), font, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(canvas, f"step {len(raw)}   last {losses[-1]:.4g}", (margin, height - 14), font, 0.45,
                    (0, 0, 0), 1, cv2.LINE_AA)
    return torch.from_numpy(canvas).float().div(255.0).unsqueeze(0)

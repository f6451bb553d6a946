"""The loss curve IMAGE Optimize Motion Embedding outputs: drawn with Pillow, log10 y axis, framed and labelled."""
import numpy as np
import torch

from reenact_core.loss_plot import loss_curve_image


def orange_row(image, x):
    """Middle row of the orange moving-average line in column x, or None where it is not drawn."""
    column = (image[:, x] * 255).round()
    rows = torch.nonzero((column[:, 0] > 230) & (column[:, 1] - 128).abs().le(30) & (column[:, 2] < 40))
    return None if len(rows) == 0 else float(rows.float().mean())


def test_a_loss_falling_tenfold_each_step_is_a_straight_line():
    """Losses 1000 down to 1 at a steady factor: a straight line on a log10 axis (a linear axis would bend it
    down to the floor by a quarter of the way), from the top of the frame to its bottom."""
    image = loss_curve_image(list(10 ** np.linspace(3, 0, 61)))[0]
    assert image.shape == (256, 512, 3) and image.dtype == torch.float32
    top, bottom, left, right = 10, 256 - 40, 40, 512 - 10
    rows = [orange_row(image, x) for x in (left + 10, (left + right) // 2, right - 10)]
    assert None not in rows, rows
    assert abs(rows[0] - top) <= 6 and abs(rows[2] - bottom) <= 6, rows
    assert abs(rows[1] - (top + bottom) / 2) <= 4, f"expected the middle step half way down, got row {rows[1]}"


def test_frame_and_labels():
    image = loss_curve_image([0.5, 0.25, 0.125])[0]
    assert image[10, 60:500].max() < 0.05 and image[216, 42:480].max() < 0.05, "black frame, top and bottom"
    assert image[:, :38].min() < 0.3, "the axis labels (highest and lowest loss) left of the frame"
    assert image[230:, 40:200].min() < 0.3, "the step and last loss under the frame"
    empty = loss_curve_image([])[0]
    assert empty[50:200, 50:480].min() == 1.0, "no losses yet: an empty white frame"


def blue_pixels(image):
    pixels = (image * 255).round()
    return (pixels[..., 2] > 180) & (pixels[..., 0] < 80) & (pixels[..., 1] < 130)


def test_held_out_points_are_blue_dots_at_their_steps_and_values():
    """Held-out losses at steps 1 and 61, at the top and the bottom of a 1000-to-1 log range: dots in the
    frame's left-top and right-bottom corners, none elsewhere."""
    losses = list(10 ** np.linspace(3, 0, 61))
    image = loss_curve_image(losses, held_out=[(1, 1000.0), (61, 1.0)], stopped_at=61)[0]
    blue = torch.nonzero(blue_pixels(image)).float()
    assert len(blue) > 0, "no held-out dots drawn"
    left, right = blue[blue[:, 1] < 256], blue[blue[:, 1] >= 256]
    assert abs(left[:, 0].mean() - 10) <= 4 and abs(left[:, 1].mean() - 40) <= 4, left.mean(0)
    assert abs(right[:, 0].mean() - 216) <= 4 and abs(right[:, 1].mean() - 502) <= 4, right.mean(0)
    assert not blue_pixels(loss_curve_image(losses)[0]).any(), "no held-out loss, no dots"

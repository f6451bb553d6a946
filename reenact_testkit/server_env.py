"""A throwaway ComfyUI base directory with this pack installed, the random-weight SVD checkpoint and inputs."""
import os

from .media import moving_square_frames, write_target_image, write_video
from .svd_checkpoint import cached_random_svd_checkpoint

PACK_DIR_NAME = "reenact-anything"
CHECKPOINT_NAMES = ("svd.safetensors", "svd_xt.safetensors")  # one layout serves both (svd_checkpoint.py)
REFERENCE_VIDEO = "reenact_reference.mp4"
TARGET_IMAGE = "reenact_target.png"


def prepare_base_directory(base: str, pack_root: str | None, with_checkpoint: bool = True) -> str:
    """custom_nodes/<pack> (a symlink, as a git clone would sit; none when pack_root is None), models/checkpoints,
    input files."""
    for sub in ("custom_nodes", "input", "output", os.path.join("models", "checkpoints")):
        os.makedirs(os.path.join(base, sub), exist_ok=True)
    link = os.path.join(base, "custom_nodes", PACK_DIR_NAME)
    if pack_root is not None and not os.path.islink(link):
        os.symlink(pack_root, link)
    if with_checkpoint:
        checkpoint = cached_random_svd_checkpoint()
        for name in CHECKPOINT_NAMES:
            target = os.path.join(base, "models", "checkpoints", name)
            if not os.path.lexists(target):
                os.symlink(checkpoint, target)
    write_video(os.path.join(base, "input", REFERENCE_VIDEO), moving_square_frames())
    write_target_image(os.path.join(base, "input", TARGET_IMAGE))
    return base

"""Optimize Motion Embedding's live preview: which image it animates, where each preview is saved, who is told.

Each preview is an animated WEBP in ComfyUI's temp folder (ComfyUI's own ImageSaveHelper, as core's animated
WEBP saving uses), so /view serves it to the browser and to reenact_cli; ComfyUI empties that folder when it starts.
"""
import logging

from comfy_api.latest import io, ui

from ..reenact_core.motion_preview import PREVIEW_STEPS, PreviewTarget, sample_preview
from ..reenact_core.svd_latents import encode_condition_image
from ..reenact_core.video_frames import fit_frames
from .live_events import send_preview

PREVIEW_SUBFOLDER = "reenact_preview"


def preview_target(vae, reference, preview_image, condition_latent, settings) -> PreviewTarget:
    """The reference's first frame (its conditioning latent is already encoded), or preview_image's first frame
    fitted to the reference's size, conditioned like the run (its augmentation, its seed)."""
    if preview_image is None:
        latent = condition_latent
    else:
        image = fit_frames(preview_image[:1], reference.shape[2], reference.shape[1], "crop")
        latent = encode_condition_image(vae, image, settings.augmentation_level, settings.seed)
    return PreviewTarget(latent.cpu(), reference.shape[0], settings.fps, settings.motion_bucket_id,
                         settings.augmentation_level, settings.seed)


def preview_callback(model, vae, target: PreviewTarget, node_id, run_name: str, total_steps: int):
    """on_preview(step, tokens) for invert_motion: sample, save, tell the client, log where it is."""
    def on_preview(step, tokens):
        frames = sample_preview(model, vae, target, tokens)
        saved = ui.ImageSaveHelper.save_animated_webp(
            frames, f"{PREVIEW_SUBFOLDER}/{run_name}_step{step:05}", io.FolderType.temp, None, fps=target.fps,
            lossless=False, quality=85, method=4)
        send_preview(node_id, step, total_steps, saved)
        logging.info("Reenact Anything: preview at step %d (%d sampler steps): temp/%s/%s", step, PREVIEW_STEPS,
                     saved["subfolder"], saved["filename"])
    return on_preview

"""The live preview of Optimize Motion Embedding: it animates what Apply Motion Embedding + ComfyUI's KSampler would,
it never changes the run, it is saved where ComfyUI serves it, and Cancel during a preview stops the run."""
import os

import pytest
import torch
from PIL import Image

import comfy.model_management as mm
import folder_paths
import nodes as comfy_nodes

from reenact_testkit.comfy_pack import run_node
from reenact_testkit.cancel import cancel_at_check
from reenact_testkit.comfy_graph import apply_motion, svd_conditioning
from reenact_testkit.node_inputs import optimize_inputs
from reenact_core.inversion import segment_ends
from reenact_core.motion_embedding import MotionEmbedding
from reenact_core.motion_preview import PREVIEW_SAMPLER, PREVIEW_SCHEDULER, PREVIEW_STEPS, PreviewTarget, \
    sample_preview
from reenact_testkit.model_state import attachments, fixed_denoised_output


@pytest.fixture()
def temp_folder(tmp_path):
    saved = folder_paths.get_temp_directory()
    folder_paths.set_temp_directory(str(tmp_path / "temp"))
    try:
        yield tmp_path / "temp"
    finally:
        folder_paths.set_temp_directory(saved)


def previews_in(temp) -> list[str]:
    folder = temp / "reenact_preview"
    return sorted(os.listdir(folder)) if folder.is_dir() else []


def optimize(small_svd, small_vae, video, **options):
    return run_node("OptimizeMotionEmbedding", **optimize_inputs(
        model=small_svd, vae=small_vae, reference=video["frames"], init_embedding=MotionEmbedding(video["init"]),
        **options))


def test_pauses_come_after_every_kth_step_and_at_the_end():
    assert segment_ends(0, 10, 3) == [3, 6, 9, 10]
    assert segment_ends(0, 9, 3) == [3, 6, 9]
    assert segment_ends(4, 10, 3) == [6, 9, 10], "a resumed run previews at the same steps as an unbroken one"
    assert segment_ends(0, 10, 0) == [10]


def test_previews_do_not_change_the_learned_tokens(small_svd, small_vae, video, tmp_folders, temp_folder):
    """Same seed, previews on and off: bit-identical tokens and losses on a CPU, and one preview per K steps."""
    plain, plain_curve = optimize(small_svd, small_vae, video, steps=4, gradient_checkpointing="blocks")
    assert previews_in(temp_folder) == []
    previewed, _ = optimize(small_svd, small_vae, video, steps=4, gradient_checkpointing="blocks",
                            preview_every=2, preview_image=torch.rand(1, 40, 90, 3))
    assert torch.equal(previewed.tokens, plain.tokens)
    assert previewed.metadata["final_loss"] == plain.metadata["final_loss"]
    saved = previews_in(temp_folder)
    assert [name.split("_step")[1][:5] for name in saved] == ["00002", "00004"], saved
    with Image.open(temp_folder / "reenact_preview" / saved[-1]) as webp:
        assert webp.format == "WEBP" and webp.n_frames == video["frames"].shape[0]
        assert webp.size == (video["frames"].shape[2], video["frames"].shape[1])


def test_a_preview_is_what_apply_motion_embedding_and_ksampler_give(small_svd, small_vae, small_clip_vision, video):
    """The same tokens through ComfyUI's own SVD_img2vid_Conditioning, Apply Motion Embedding, KSampler (cfg 1,
    the preview's sampler and steps) and VAE Decode give the preview's frames."""
    frames, seed = video["frames"].shape[0], 7
    image = video["frames"][:1]
    tokens = video["init"] + 0.3 * torch.randn(video["init"].shape, generator=torch.Generator().manual_seed(3))
    embedding = MotionEmbedding(tokens, {"fps": 6, "motion_bucket_id": 127})
    positive, negative, latent = svd_conditioning(small_clip_vision, small_vae, image, frames)
    positive, negative = apply_motion(positive, negative, embedding, latent)
    with torch.inference_mode():
        samples = comfy_nodes.common_ksampler(small_svd, seed, PREVIEW_STEPS, 1.0, PREVIEW_SAMPLER, PREVIEW_SCHEDULER,
                                              positive, negative, latent)[0]
        expected = comfy_nodes.VAEDecode().decode(small_vae, samples)[0]
        target = PreviewTarget(small_vae.encode(image), frames, fps=6, motion_bucket_id=127, augmentation_level=0.0,
                               seed=seed)
        preview = sample_preview(small_svd, small_vae, target, tokens)
    assert preview.shape == expected.shape == (frames, 64, 64, 3)
    torch.testing.assert_close(preview, expected, rtol=0, atol=1e-5)
    # The motion matters: other tokens give another preview.
    with torch.inference_mode():
        other = sample_preview(small_svd, small_vae, target, torch.zeros_like(tokens))
    assert (other - preview).abs().max() > 1e-3


def test_cancel_during_a_preview_stops_the_run(small_svd, small_vae, video, tmp_folders, temp_folder):
    """Interrupt checks: one per optimisation step, one per sampler step of a preview. Check 4 falls in the first
    preview (after steps 1 and 2): the run stops there, saves no preview, and leaves the MODEL as it was."""
    before_output, before = fixed_denoised_output(small_svd, video), attachments(small_svd)
    with cancel_at_check(4) as seen, pytest.raises(mm.InterruptProcessingException):
        optimize(small_svd, small_vae, video, steps=50, preview_every=2, gradient_checkpointing="layers")
    assert len(seen) == 4
    assert previews_in(temp_folder) == []
    assert attachments(small_svd) == before
    assert torch.equal(fixed_denoised_output(small_svd, video), before_output)

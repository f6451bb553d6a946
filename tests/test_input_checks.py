"""Cheap checks run before a long optimisation starts, each naming what was expected and given."""
import pytest
import torch

import comfy.model_patcher
import comfy.supported_models
from conftest import run_node
from reenact_core.motion_embedding import MotionEmbedding
from reenact_testkit.small_models import init_weights

FRAMES = 4


def small_sd15():
    """A non-video model ComfyUI can build: SD1.5's class with a tiny UNet."""
    config = {"use_checkpoint": False, "image_size": 32, "use_spatial_transformer": True, "legacy": False,
              "in_channels": 4, "out_channels": 4, "model_channels": 32, "num_res_blocks": [1],
              "channel_mult": [1], "transformer_depth": [1], "transformer_depth_output": [1, 1],
              "transformer_depth_middle": 1, "use_linear_in_transformer": False, "context_dim": 768,
              "num_head_channels": 32, "use_temporal_attention": False, "use_temporal_resblock": False,
              "adm_in_channels": None}
    with torch.inference_mode():
        model = comfy.supported_models.SD15(config).get_model({})
        init_weights(model.diffusion_model, 0)
    return comfy.model_patcher.ModelPatcher(model, torch.device("cpu"), torch.device("cpu"))


def optimise(model, vae, frames, embedding, **overrides):
    inputs = dict(model=model, vae=vae, reference=frames, init_embedding=embedding, steps=2, learning_rate=0.01,
                  seed=0, sigma_log_mean=0.7, sigma_log_std=1.6, augmentation_level=0.0, fps=6,
                  motion_bucket_id=127, gradient_checkpointing="off")
    inputs.update(overrides)
    return run_node("OptimizeMotionEmbedding", **inputs)


@pytest.fixture()
def frames():
    return torch.rand(FRAMES, 64, 64, 3)


def test_non_svd_model_named(small_vae, frames):
    with pytest.raises(ValueError, match="expected an SVD image-to-video MODEL.*got SD15"):
        optimise(small_sd15(), small_vae, frames, MotionEmbedding(torch.randn(FRAMES + 1, 2, 64)))


def test_embedding_dim_mismatch_named(small_svd, small_vae, frames):
    with pytest.raises(ValueError, match="expected a motion embedding of dim 64.*got dim 1024"):
        optimise(small_svd, small_vae, frames, MotionEmbedding(torch.randn(FRAMES + 1, 2, 1024)))


def test_frame_count_mismatch_named(small_svd, small_vae, frames):
    with pytest.raises(ValueError, match="expected 6 reference frames.*got 4"):
        optimise(small_svd, small_vae, frames, MotionEmbedding(torch.randn(7, 2, 64)))


def test_size_not_multiple_of_64_named(small_svd, small_vae):
    with pytest.raises(ValueError, match="multiples of 64, got 96x64"):
        optimise(small_svd, small_vae, torch.rand(FRAMES, 64, 96, 3), MotionEmbedding(torch.randn(FRAMES + 1, 2, 64)))


@pytest.mark.parametrize("steps,lr,message", [(0, 0.01, "steps of at least 1, got 0"),
                                              (5, 0.0, "learning rate above 0, got 0.0"),
                                              (5, -1.0, "learning rate above 0, got -1.0"),
                                              (5, float("nan"), "learning rate above 0, got nan")])
def test_bad_settings_caught_in_validation(steps, lr, message):
    from nodes import NODE_CLASS_MAPPINGS
    result = NODE_CLASS_MAPPINGS["OptimizeMotionEmbedding"].validate_inputs(steps=steps, learning_rate=lr)
    assert isinstance(result, str) and message in result


def test_wrong_conditioning_named(small_svd):
    from helpers import apply_motion
    sd_style = [[torch.zeros(1, 77, 64), {"pooled_output": torch.zeros(1, 64)}]]
    with pytest.raises(ValueError, match="expected CONDITIONING from SVD_img2vid_Conditioning"):
        apply_motion(sd_style, sd_style, MotionEmbedding(torch.randn(FRAMES + 1, 2, 64)),
                     {"samples": torch.zeros(FRAMES, 4, 8, 8)})

"""Cheap checks run before a long optimisation starts, each naming what was expected and given."""
import pytest
import torch

import comfy.model_patcher
import comfy.supported_models
from reenact_core.errors import ReenactError
from reenact_core.motion_embedding import MotionEmbedding
from reenact_testkit.comfy_pack import run_node
from reenact_testkit.node_inputs import optimize_inputs
from reenact_testkit.small_models import init_weights

FRAMES = 4


def tiny_unet(model_class, init=True, **config):
    """A tiny UNet of another model family, built by ComfyUI's own config class (init=False: never run)."""
    base = {"use_checkpoint": False, "image_size": 32, "use_spatial_transformer": True, "legacy": False,
            "in_channels": 4, "out_channels": 4, "model_channels": 32, "num_res_blocks": [1], "channel_mult": [1],
            "transformer_depth": [1], "transformer_depth_output": [1, 1], "transformer_depth_middle": 1,
            "num_head_channels": 32, "use_temporal_attention": False, "use_temporal_resblock": False}
    with torch.inference_mode():
        model = model_class(dict(base, **config)).get_model({})
        if init:
            init_weights(model.diffusion_model, 0)
    return comfy.model_patcher.ModelPatcher(model, torch.device("cpu"), torch.device("cpu"))


def small_sd15():
    """A non-video model ComfyUI can build: SD1.5's class with a tiny UNet."""
    return tiny_unet(comfy.supported_models.SD15, use_linear_in_transformer=False, context_dim=768,
                     adm_in_channels=None)


def small_sdxl():
    """SDXL's class with a tiny UNet (its 2816-wide ADM input and 2048-d context, as ComfyUI builds SDXL)."""
    return tiny_unet(comfy.supported_models.SDXL, init=False, use_linear_in_transformer=True, context_dim=2048,
                     adm_in_channels=2816, num_classes="sequential")


def optimise(model, vae, frames, embedding, **overrides):
    return run_node("OptimizeMotionEmbedding", **optimize_inputs(model=model, vae=vae, reference=frames,
                                                                 init_embedding=embedding, **overrides))


@pytest.fixture()
def frames():
    return torch.rand(FRAMES, 64, 64, 3)


@pytest.mark.parametrize("make,family", [(small_sd15, "SD15"), (small_sdxl, "SDXL")])
def test_non_svd_model_named(small_vae, frames, make, family):
    with pytest.raises(ReenactError, match=f"expected an SVD image-to-video MODEL.*got {family}$"):
        optimise(make(), small_vae, frames, MotionEmbedding(torch.randn(FRAMES + 1, 2, 64)))


def test_vae_with_other_latent_channels_named(small_svd, frames):
    """A VAE of another family (16 latent channels, like SD3/Flux) cannot feed SVD's 8-channel input.

    Built from a config, this VAE reports ComfyUI's default latent_channels (4), so only the check on the
    encoded latents catches it, right after the encode and before any step.
    """
    import comfy.sd
    from comfy.ldm.models.autoencoder import AutoencoderKL
    ddconfig = {"double_z": True, "z_channels": 16, "resolution": 64, "in_channels": 3, "out_ch": 3, "ch": 32,
                "ch_mult": [1, 1, 1, 1], "num_res_blocks": 1, "attn_resolutions": [], "dropout": 0.0}
    module = init_weights(AutoencoderKL(ddconfig=ddconfig, embed_dim=16), 3)
    vae = comfy.sd.VAE(sd=module.state_dict(), config={"params": {"ddconfig": ddconfig, "embed_dim": 16}})
    with pytest.raises(ReenactError, match=r"expected the VAE to encode the reference to latents of shape "
                                         r"\(4, 4, 8, 8\) .*got \(4, 16, 8, 8\)"):
        optimise(small_svd, vae, frames, MotionEmbedding(torch.randn(FRAMES + 1, 2, 64)))
    vae.latent_channels = 16  # as ComfyUI sets it for a 16-channel VAE loaded from a checkpoint file
    with pytest.raises(ReenactError, match="expected a VAE with 4 latent channels.*got one with 16"):
        optimise(small_svd, vae, frames, MotionEmbedding(torch.randn(FRAMES + 1, 2, 64)))


def test_clip_vision_of_another_width_named(small_svd, small_vae, frames):
    """A CLIP vision projecting to 32 (not the SVD's 64) makes an embedding Optimize names as the CLIP's fault."""
    from reenact_testkit.small_models import make_small_clip_vision
    with torch.inference_mode():
        other_clip = make_small_clip_vision(seed=4, projection_dim=32)
    (init,) = run_node("InflateCLIPEmbedding", clip_vision=other_clip, images=frames, tokens_per_frame=2,
                       init_noise=0.1, seed=0, frames_if_single_image=14)
    with pytest.raises(ReenactError, match="expected a motion embedding of dim 64 .*got dim 32 from Inflate CLIP "
                                         "Embedding: its CLIP_VISION projects to 32, not this model's 64"):
        optimise(small_svd, small_vae, frames, init)


def test_conditioning_from_another_clip_vision_named(small_svd, small_vae, small_clip_vision):
    """At transfer: SVD_img2vid_Conditioning fed a 32-wide CLIP vision vs a 64-wide embedding."""
    from reenact_testkit.comfy_graph import apply_motion, svd_conditioning
    from reenact_testkit.small_models import make_small_clip_vision
    with torch.inference_mode():
        other_clip = make_small_clip_vision(seed=4, projection_dim=32)
    positive, negative, latent = svd_conditioning(other_clip, small_vae, torch.rand(1, 64, 64, 3), FRAMES)
    with pytest.raises(ReenactError, match="expected a motion embedding of dim 32 to match the conditioning's "
                                         "CLIP vision dim, got dim 64"):
        apply_motion(positive, negative, MotionEmbedding(torch.randn(FRAMES + 1, 2, 64)), latent)


def test_embedding_dim_mismatch_named(small_svd, small_vae, frames):
    with pytest.raises(ReenactError, match="expected a motion embedding of dim 64.*got dim 1024"):
        optimise(small_svd, small_vae, frames, MotionEmbedding(torch.randn(FRAMES + 1, 2, 1024)))


def test_frame_count_mismatch_named(small_svd, small_vae, frames):
    with pytest.raises(ReenactError, match="frame slots to match the reference's frames, got 6 slots for 4 frames"):
        optimise(small_svd, small_vae, frames, MotionEmbedding(torch.randn(7, 2, 64)))


def test_size_not_multiple_of_64_named(small_svd, small_vae):
    with pytest.raises(ReenactError, match="multiples of 64, got 96x64"):
        optimise(small_svd, small_vae, torch.rand(FRAMES, 64, 96, 3), MotionEmbedding(torch.randn(FRAMES + 1, 2, 64)))


def test_huge_resolution_named_before_any_work(small_svd, small_vae):
    """4160 wide passes the multiple-of-64 rule but not the 4096 limit; caught before the VAE runs."""
    frames = torch.rand(FRAMES, 64, 4160, 3)
    with pytest.raises(ReenactError, match="expected width and height of at most 4096, got 4160x64"):
        optimise(small_svd, small_vae, frames, MotionEmbedding(torch.randn(FRAMES + 1, 2, 64)))


def test_wrong_conditioning_named(small_svd):
    from reenact_testkit.comfy_graph import apply_motion
    sd_style = [[torch.zeros(1, 77, 64), {"pooled_output": torch.zeros(1, 64)}]]
    with pytest.raises(ReenactError, match="expected CONDITIONING from SVD_img2vid_Conditioning"):
        apply_motion(sd_style, sd_style, MotionEmbedding(torch.randn(FRAMES + 1, 2, 64)),
                     {"samples": torch.zeros(FRAMES, 4, 8, 8)})

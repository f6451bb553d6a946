"""The toy world's VAE: an exact, viewable codec between IMAGE frames and toy latents.

The toy SVD lives in latent space (toy_world), so the pack's IMAGE-taking nodes (LoadMotionReference,
OptimizeMotionEmbedding's VAE encode, VAEDecode) need a VAE that maps a picture of a toy latent back
to that latent. This one is a fixed 8x codec inside ComfyUI's own `comfy.sd.VAE` wrapper (its batching,
device moves, pixel scaling and memory management run as for any VAE). Each 8x8 pixel patch holds one
latent pixel: its top half shows channels 0-2 as RGB, its bottom half channel 3 as grey, around mid-grey.
Encoding averages each half-patch, so 8-bit files and mild video compression cost little (measured in
tests/test_toy_nodes.py). It is nothing like SVD's learned VAE: it has no weights and compresses nothing.
The pure functions here need only torch (the demo command scores its result with them); make_toy_vae
needs ComfyUI.
"""
import torch

from . import toy_world

PATCH = 8
LATENT_PER_UNIT = 20.0   # LATENT units per unit of ComfyUI's [-1, 1] pixel range: toy colours reach about 16.5


class ToyCodec(torch.nn.Module):
    """encode: (B, 3, H, W) in [-1, 1] -> (B, 4, H/8, W/8) LATENT units; decode: the inverse picture."""

    def __init__(self):
        super().__init__()
        # One parameter so ComfyUI's ModelPatcher sees a dtype and a device, as for its own pixel-space VAE.
        self.latent_per_unit = torch.nn.Parameter(torch.tensor(LATENT_PER_UNIT), requires_grad=False)

    def encode(self, pixels: torch.Tensor, *_args, **_kwargs) -> torch.Tensor:
        b, c, h, w = pixels.shape
        patches = pixels.reshape(b, c, h // PATCH, PATCH, w // PATCH, PATCH)
        half = PATCH // 2
        colour = patches[:, :, :, :half].mean(dim=(3, 5))
        grey = patches[:, :, :, half:].mean(dim=(1, 3, 5))[:, None]
        return torch.cat([colour, grey], 1) * self.latent_per_unit

    def decode(self, latents: torch.Tensor, *_args, **_kwargs) -> torch.Tensor:
        z = latents / self.latent_per_unit
        b, _, h, w = z.shape
        top = z[:, :3, :, None, :, None].expand(b, 3, h, PATCH // 2, w, PATCH)
        bottom = z[:, 3:, :, None, :, None].expand(b, 3, h, PATCH // 2, w, PATCH)
        return torch.cat([top, bottom], 3).reshape(b, 3, h * PATCH, w * PATCH)


def make_toy_vae():
    """ComfyUI's VAE wrapper around ToyCodec: 4 latent channels, 8x down and up, fp32.

    Built from ComfyUI's own pixel-space VAE (the `pixel_space_vae` key) and then given the codec,
    since comfy.sd.VAE picks its network from state-dict keys and has no key for this one.
    """
    import comfy.model_management
    import comfy.model_patcher
    import comfy.sd
    vae = comfy.sd.VAE(sd={"pixel_space_vae": torch.tensor(1.0)})
    codec = ToyCodec().eval()
    vae.first_stage_model = codec
    vae.latent_channels = toy_world.CHANNELS
    vae.downscale_ratio = vae.upscale_ratio = PATCH
    vae.output_channels = 3
    vae.memory_used_encode = lambda shape, dtype: 4 * shape[2] * shape[3] * comfy.model_management.dtype_size(dtype)
    vae.memory_used_decode = lambda shape, dtype: (4 * shape[2] * shape[3] * PATCH * PATCH
                                                   * comfy.model_management.dtype_size(dtype))
    vae.vae_dtype = torch.float32
    vae.working_dtypes = [torch.float32]
    vae.patcher = comfy.model_patcher.ModelPatcher(codec, load_device=vae.device,
                                                   offload_device=comfy.model_management.vae_offload_device())
    return vae


def latents_to_pixels(latents: torch.Tensor) -> torch.Tensor:
    """(F, 4, h, w) LATENT units -> IMAGE (F, 8h, 8w, 3) in [0, 1], as the VAE decodes them (no clamp loss
    for toy colours, which stay inside the range)."""
    with torch.no_grad():
        pixels = ToyCodec().decode(latents.float())
    return ((pixels + 1) / 2).clamp(0, 1).movedim(1, -1)


def pixels_to_latents(images: torch.Tensor) -> torch.Tensor:
    """IMAGE (F, H, W, 3) in [0, 1] -> (F, 4, H/8, W/8) LATENT units, as the VAE encodes them."""
    with torch.no_grad():
        return ToyCodec().encode(images.movedim(-1, 1).float() * 2 - 1)

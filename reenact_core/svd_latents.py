"""The latents an inversion and its preview start from: the reference video's, and the conditioning image's."""
import torch


def encode_condition_image(vae, image: torch.Tensor, augmentation_level: float, seed: int) -> torch.Tensor:
    """The latent of image[0] with SVD's pixel-space noise augmentation, as SVD conditioning holds it.

    The augmentation is the one ComfyUI's SVD_img2vid_Conditioning applies (pixels + noise * level, then the VAE),
    not a call to that node: it draws its noise from the global RNG (torch.randn_like), and a run here must draw
    it from the run's seed, so that a resumed run and a rerun are bit-identical.
    """
    first = image[:1, ..., :3]
    if augmentation_level > 0:
        generator = torch.Generator().manual_seed(seed)
        first = first + torch.randn(first.shape, generator=generator) * augmentation_level
    return vae.encode(first)


def encode_reference(vae, frames: torch.Tensor, augmentation_level: float, seed: int):
    """The reference video's latents, and its first frame's conditioning latent."""
    return vae.encode(frames[..., :3]), encode_condition_image(vae, frames, augmentation_level, seed)

"""A full-size SVD checkpoint of random weights in the released key layout.

Real SVD weights cannot be downloaded here, yet users load `svd.safetensors` / `svd_xt.safetensors` through
ComfyUI's ImageOnlyCheckpointLoader. This file has the same keys and shapes, so the real loading path (model
detection, CLIP-vision key conversion, the temporal VAE decoder) is exercised end to end. The weights are random,
so the outputs are noise.

SVD and SVD-XT share one layout: ComfyUI detects both from the UNet keys alone (supported_models.SVD_img2vid), and
the two releases differ in their trained values only. One file therefore serves both names.

Keys and shapes come from ComfyUI's own classes built on the meta device, except the CLIP tower, which the release
stores in open_clip naming and ComfyUI converts on load (clip_vision.convert_to_transformers).
"""
import math
import os

import torch

LAYOUT_VERSION = "1"
UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
CLIP_PREFIX = "conditioner.embedders.0.open_clip.model.visual."
# The release also keeps a copy of the VAE encoder for the conditioning frame; ComfyUI ignores it.
CONDITIONER_ENCODER_PREFIX = "conditioner.embedders.3.encoder."

VIT_H = {"width": 1280, "layers": 32, "mlp": 5120, "patch": 14, "image": 224, "projection": 1024}


def default_cache_dir() -> str:
    return os.environ.get("REENACT_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "reenact_anything")


def unet_shapes() -> dict[str, torch.Size]:
    import comfy.supported_models

    from .small_models import full_svd_unet_config
    model = comfy.supported_models.SVD_img2vid(full_svd_unet_config()).get_model({}, device="meta")
    return {UNET_PREFIX + k: v.shape for k, v in model.diffusion_model.state_dict().items()}


def temporal_vae():
    """The VAE ComfyUI builds when it sees `decoder.mid.block_1.mix_factor` (comfy/sd.py)."""
    from comfy.ldm.models.autoencoder import AutoencodingEngine
    encoder = {"double_z": True, "z_channels": 4, "resolution": 256, "in_channels": 3, "out_ch": 3, "ch": 128,
               "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_resolutions": [], "dropout": 0.0}
    decoder = dict(encoder, video_kernel_size=[3, 1, 1], alpha=0.0)
    with torch.device("meta"):
        return AutoencodingEngine(
            regularizer_config={"target": "comfy.ldm.models.autoencoder.DiagonalGaussianRegularizer"},
            encoder_config={"target": "comfy.ldm.modules.diffusionmodules.model.Encoder", "params": encoder},
            decoder_config={"target": "comfy.ldm.modules.temporal_ae.VideoDecoder", "params": decoder})


def vae_shapes() -> dict[str, torch.Size]:
    state = temporal_vae().state_dict()
    shapes = {VAE_PREFIX + k: v.shape for k, v in state.items()}
    shapes.update({CONDITIONER_ENCODER_PREFIX + k: v.shape for k, v in state.items() if k.startswith("encoder.")})
    return shapes


def clip_shapes(spec=VIT_H) -> dict[str, tuple]:
    """open_clip's VisionTransformer naming for ViT-H/14."""
    w, m = spec["width"], spec["mlp"]
    positions = (spec["image"] // spec["patch"]) ** 2 + 1
    shapes = {"class_embedding": (w,), "positional_embedding": (positions, w), "proj": (w, spec["projection"]),
              "conv1.weight": (w, 3, spec["patch"], spec["patch"]), "ln_pre.weight": (w,), "ln_pre.bias": (w,),
              "ln_post.weight": (w,), "ln_post.bias": (w,)}
    for i in range(spec["layers"]):
        block = f"transformer.resblocks.{i}."
        shapes.update({block + k: s for k, s in {
            "ln_1.weight": (w,), "ln_1.bias": (w,), "ln_2.weight": (w,), "ln_2.bias": (w,),
            "attn.in_proj_weight": (3 * w, w), "attn.in_proj_bias": (3 * w,),
            "attn.out_proj.weight": (w, w), "attn.out_proj.bias": (w,),
            "mlp.c_fc.weight": (m, w), "mlp.c_fc.bias": (m,), "mlp.c_proj.weight": (w, m), "mlp.c_proj.bias": (w,),
        }.items()})
    return {CLIP_PREFIX + k: torch.Size(s) for k, s in shapes.items()}


def checkpoint_shapes() -> dict[str, torch.Size]:
    return {**unet_shapes(), **vae_shapes(), **clip_shapes()}


def random_tensor(key: str, shape: torch.Size, gen: torch.Generator, dtype) -> torch.Tensor:
    """Values that keep activations finite through the deep nets: unit norms, fan-in-scaled matrices."""
    leaf = key.rsplit(".", 1)[-1]
    if len(shape) == 1 and ("norm" in key or ".ln_" in key) and leaf == "weight":
        return torch.ones(shape, dtype=dtype)
    if len(shape) >= 2:
        fan_in = math.prod(shape[1:])
        return (torch.randn(shape, generator=gen) / math.sqrt(fan_in)).to(dtype)
    return (torch.randn(shape, generator=gen) * 0.02).to(dtype)


def write_random_svd_checkpoint(path: str, seed: int = 0, dtype=torch.float16) -> str:
    """Write the checkpoint atomically (temp file, then rename) so an interrupted run never leaves half a file."""
    from safetensors.torch import save_file
    gen = torch.Generator().manual_seed(seed)
    tensors = {k: random_tensor(k, s, gen, dtype) for k, s in sorted(checkpoint_shapes().items())}
    partial = f"{path}.partial-{os.getpid()}"
    save_file(tensors, partial, metadata={"reenact_anything_random_svd": LAYOUT_VERSION, "seed": str(seed)})
    os.replace(partial, path)
    return path


def is_current(path: str) -> bool:
    from safetensors import safe_open
    try:
        with safe_open(path, framework="pt") as f:
            return (f.metadata() or {}).get("reenact_anything_random_svd") == LAYOUT_VERSION
    except Exception:
        return False


def cached_random_svd_checkpoint(cache_dir: str | None = None) -> str:
    """The cached checkpoint's path, written on first use (about 4.5 GB, fp16)."""
    cache_dir = cache_dir or default_cache_dir()
    os.makedirs(cache_dir, exist_ok=True)
    path = os.path.join(cache_dir, "svd_random_weights.safetensors")
    if not is_current(path):
        # In a child process: its 4.5 GB of tensors leave with it, rather than staying in the test worker's memory
        # beside the server that loads the file (two test workers share the machine's 24 GiB).
        import subprocess
        import sys
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        subprocess.run([sys.executable, "-c", "import sys; from reenact_cli.locate import setup_comfyui; "
                        "setup_comfyui(); from reenact_testkit.svd_checkpoint import write_random_svd_checkpoint; "
                        "write_random_svd_checkpoint(sys.argv[1])", path], cwd=root, check=True, timeout=1800)
    return path

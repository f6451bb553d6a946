"""Time one training step of the public re-implementation (galhar/reenact-anything) at a given setting.

The peer's code is imported from --peer-repo (a checkout of github.com/galhar/reenact-anything; it is
never copied into this repository) and its own `train_step` runs: VAE encode of the clip and of the
noised first frame, CLIP image encode, the UNet forward with its motion-embedding override
(`allow_motion_embedding`), backward to the embedding, AdamW step. Models are built the way its
`load_models` builds them (requires_grad off, weights in the accelerator's mixed-precision dtype,
xformers when installed, gradient checkpointing, `unet.train()`), but from SVD's released configs
with random weights, since nothing can be downloaded. Prints a table, then one JSON line.

The peer pins diffusers 0.30.2, transformers 4.44.2 and accelerate 0.34.2, which clash with ComfyUI's
transformers: run it in its own process with those on PYTHONPATH (benchmarks/README.md, "Peer side by
side"; benchmarks/peer_side_by_side.py does both runs and the ratio).

  PYTHONPATH=/tmp/peer_site python benchmarks/peer_step.py --peer-repo ../reenact-anything --device cuda
  PYTHONPATH=/tmp/peer_site python benchmarks/peer_step.py --peer-repo ../reenact-anything --device cpu --tiny \\
      --frames 3 --height 64 --width 64 --steps 1 --warmup 1 --mixed-precision no
"""
import argparse
import json
import os
import statistics
import sys
import time

from step_settings import add_step_settings

# SVD's released configs (stabilityai/stable-video-diffusion-img2vid: unet/, vae/, image_encoder/ config.json).
SVD_UNET = dict(sample_size=96, in_channels=8, out_channels=4,
                down_block_types=("CrossAttnDownBlockSpatioTemporal",) * 3 + ("DownBlockSpatioTemporal",),
                up_block_types=("UpBlockSpatioTemporal",) + ("CrossAttnUpBlockSpatioTemporal",) * 3,
                block_out_channels=(320, 640, 1280, 1280), addition_time_embed_dim=256,
                projection_class_embeddings_input_dim=768, layers_per_block=2, cross_attention_dim=1024,
                transformer_layers_per_block=1, num_attention_heads=(5, 10, 20, 20), num_frames=14)
SVD_VAE = dict(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
               block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4, sample_size=768,
               scaling_factor=0.18215, force_upcast=True)
SVD_CLIP = dict(hidden_size=1280, intermediate_size=5120, num_attention_heads=16, num_hidden_layers=32,
                patch_size=14, image_size=224, projection_dim=1024, hidden_act="gelu", layer_norm_eps=1e-5)
CLIP_MEAN, CLIP_STD = [0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711]
# --tiny: the same classes, a few channels wide, for a CPU check that the peer's code path runs.
TINY_UNET = dict(SVD_UNET, block_out_channels=(32, 32, 64, 64), num_attention_heads=(2, 2, 2, 2),
                 cross_attention_dim=64, addition_time_embed_dim=16, projection_class_embeddings_input_dim=48,
                 layers_per_block=1)
TINY_VAE = dict(SVD_VAE, block_out_channels=(32, 32, 32, 32), layers_per_block=1)
TINY_CLIP = dict(SVD_CLIP, hidden_size=64, intermediate_size=128, num_attention_heads=2, num_hidden_layers=2,
                 projection_dim=64)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--peer-repo", required=True, help="checkout of galhar/reenact-anything (not committed here)")
    add_step_settings(p)
    p.add_argument("--mixed-precision", choices=["fp16", "bf16", "no"], default="fp16",
                   help="the peer's --mixed_precision (its default: fp16)")
    p.add_argument("--gradient-checkpointing", choices=["on", "off"], default="on", help="the peer's default: on")
    p.add_argument("--attention", choices=["auto", "xformers", "sdpa"], default="auto",
                   help="auto: xformers when installed (the peer's default), else diffusers' SDPA processor")
    p.add_argument("--tiny", action="store_true", help="a few channels wide, for a CPU smoke run")
    return p.parse_args(argv)


def import_peer(repo):
    repo = os.path.abspath(repo)
    if not os.path.isfile(os.path.join(repo, "train_reenact.py")):
        sys.exit(f"expected a checkout of galhar/reenact-anything at {repo} (with train_reenact.py), got none")
    sys.path.insert(0, repo)
    # The peer's own environment has no peft; a recent one (the GPU image has one) fails at import against its
    # pinned huggingface_hub, and diffusers imports peft when it finds it. Hidden, as in the peer's environment.
    sys.modules["peft"] = None
    import train_reenact
    from utils.embds_inversion_utils import ImageEmbeddingWrapper, allow_motion_embedding
    return train_reenact, ImageEmbeddingWrapper, allow_motion_embedding


def build(opts, torch, allow_motion_embedding):
    """The peer's load_models, from configs instead of the hub."""
    from accelerate import Accelerator
    from diffusers import AutoencoderKLTemporalDecoder, UNetSpatioTemporalConditionModel
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection
    accelerator = Accelerator(mixed_precision=opts.mixed_precision, cpu=opts.device == "cpu")
    torch.manual_seed(0)
    unet = UNetSpatioTemporalConditionModel(**(TINY_UNET if opts.tiny else SVD_UNET))
    vae = AutoencoderKLTemporalDecoder(**(TINY_VAE if opts.tiny else SVD_VAE))
    image_encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(**(TINY_CLIP if opts.tiny else SVD_CLIP)))
    feature_extractor = CLIPImageProcessor(image_mean=CLIP_MEAN, image_std=CLIP_STD, crop_size=224,
                                           size={"shortest_edge": 224})
    for model in (vae, image_encoder, unet):
        model.requires_grad_(False)
    allow_motion_embedding(unet)
    weight_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "no": torch.float32}[opts.mixed_precision]
    for model in (image_encoder, vae, unet):
        model.to(accelerator.device, dtype=weight_dtype)
    attention = opts.attention
    if attention == "auto":
        from diffusers.utils.import_utils import is_xformers_available
        attention = "xformers" if is_xformers_available() and opts.device == "cuda" else "sdpa"
    if attention == "xformers":
        unet.enable_xformers_memory_efficient_attention()
    if opts.gradient_checkpointing == "on":
        unet.enable_gradient_checkpointing()
    return accelerator, unet, vae, image_encoder, feature_extractor, weight_dtype, attention


def main(argv=None):
    opts = parse_args(argv)
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from flop_formulas import register_cpu_attention_formulas
    register_cpu_attention_formulas()
    peer, ImageEmbeddingWrapper, allow_motion_embedding = import_peer(opts.peer_repo)
    accelerator, unet, vae, image_encoder, feature_extractor, weight_dtype, attention = build(
        opts, torch, allow_motion_embedding)
    dim = unet.config.cross_attention_dim
    embedding = ImageEmbeddingWrapper(0.1 * torch.randn(1, opts.frames + 1, opts.tokens, dim))
    embedding.requires_grad_(True)
    embedding.to(dtype=torch.float32)
    # The peer's own optimiser set-up (AdamW, lr 0.01, constant schedule after 500 warm-up steps).
    optimizer, lr_scheduler, _ = peer.init_optimizer_and_scheduler(
        accelerator, [None], False, 0.01, 0.9, 0.999, 0.01, 1e-8, 1, 5000, 1, "constant", 500, embedding)
    embedding, unet, optimizer, lr_scheduler = accelerator.prepare(embedding, unet, optimizer, lr_scheduler)
    unet.train()
    frames = torch.rand(1, opts.frames, 3, opts.height, opts.width, generator=torch.Generator().manual_seed(1))
    batch = {"frames": frames * 2 - 1}
    sync = torch.cuda.synchronize if opts.device == "cuda" else (lambda: None)

    def step(i):
        loss, _, _ = peer.train_step(batch, weight_dtype, embedding(), unet, vae, feature_extractor, image_encoder,
                                     optimizer, accelerator, 1, 1, i, lr_scheduler, "l2")
        return float(loss.detach())

    weights_gb = (torch.cuda.memory_allocated() / 2 ** 30) if opts.device == "cuda" else None
    before = embedding().detach().clone()
    for i in range(opts.warmup):
        step(i)
    sync()
    if opts.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for i in range(opts.steps):
        sync()
        start = time.perf_counter()
        loss = step(opts.warmup + i)
        sync()
        times.append(time.perf_counter() - start)
    peak_gb = torch.cuda.max_memory_allocated() / 2 ** 30 if opts.device == "cuda" else None
    if torch.equal(before, embedding().detach()):
        sys.exit("expected the peer's steps to update the motion embedding, got the same tensor back")
    with FlopCounterMode(display=False) as counter:
        step(opts.warmup + opts.steps)
    flop = counter.get_total_flops()
    s_per_step = statistics.median(times)
    result = {"impl": "galhar/reenact-anything train_step", "device": opts.device, "frames": opts.frames,
              "height": opts.height, "width": opts.width, "tokens": opts.tokens, "dtype": opts.mixed_precision,
              "checkpointing": opts.gradient_checkpointing, "attention": attention, "tiny": opts.tiny,
              "s_per_step": round(s_per_step, 4), "peak_mem_gb": None if peak_gb is None else round(peak_gb, 3),
              "weights_mem_gb": None if weights_gb is None else round(weights_gb, 3),
              "tflop_per_step": round(flop / 1e12, 4), "achieved_tflops": round(flop / s_per_step / 1e12, 4),
              "last_loss": loss, "unet_params": sum(p.numel() for p in unet.parameters())}
    if opts.device == "cuda":
        result["device_name"] = torch.cuda.get_device_name()
    print(f"peer step ({result['impl']}), {opts.frames}x{opts.height}x{opts.width}, N={opts.tokens}, "
          f"{opts.mixed_precision}, checkpointing {opts.gradient_checkpointing}, attention {attention}")
    print(f"  s/step (median of {opts.steps})  {s_per_step:.4f}")
    print(f"  peak memory               {result['peak_mem_gb']} GB")
    print(f"  TFLOP/step                {flop / 1e12:.4f}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()

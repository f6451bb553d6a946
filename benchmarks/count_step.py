"""Count one inversion step at any size without running it: FLOPs, and a memory prediction.

The model is ComfyUI's SVD (full size by default) built on PyTorch's meta device, which has shapes but
no memory and no arithmetic, so 14 or 25 frames at 576x1024 count in seconds on any machine. The step
is the optimiser's own: `reenact_core.inversion.DenoisingObjective` (the conds `model_conds` builds, the loss
`apply_model` gives) inside `changed_for_run` (frozen weights, the chosen checkpointing, the compute
dtype), then backward to the tokens. FLOPs come from
`torch.utils.flop_counter`, recompute included: with --device cpu they are what inversion_step.py counts
on a real run (tests/test_benchmark_smoke.py checks the two agree). On meta, ComfyUI's SDPA is routed to
the fused attention op a GPU runs (see gpu_attention_kernel), so saved bytes and attention FLOPs are the
GPU's, not the CPU math path's.

The memory figure is a prediction from what autograd saves, not a measurement: weights, plus what stays
alive between checkpointed segments (their inputs and everything saved outside them), plus the largest
segment's saved activations (alive while it is recomputed in backward). It leaves out allocator slack,
attention workspaces and short-lived temporaries, so a real peak is higher; benchmarks/README.md says by
how much once a GPU has measured it.

  python benchmarks/count_step.py --frames 14 --height 576 --width 1024 --tokens 5 --dtype fp16
"""
import argparse
import contextlib
import json
import os
import sys
from types import SimpleNamespace

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from inversion_step import DTYPES, setup_comfy  # noqa: E402

GB = 2 ** 30


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=14)
    p.add_argument("--height", type=int, default=576)
    p.add_argument("--width", type=int, default=1024)
    p.add_argument("--tokens", type=int, default=5)
    p.add_argument("--dtype", choices=sorted(DTYPES), default="fp16", help="weights and compute dtype")
    p.add_argument("--checkpointing", nargs="+", choices=["off", "blocks", "layers"],
                   default=["off", "blocks", "layers"])
    p.add_argument("--model", choices=["full", "small"], default="full")
    p.add_argument("--device", choices=["meta", "cpu"], default="meta",
                   help="meta: count only (any size); cpu: the same count on real tensors, for the check")
    p.add_argument("--peer-encoders", action="store_true",
                   help="also count what galhar/reenact-anything's step adds to the UNet's: a VAE encode of the "
                        "frames plus the noised first frame, and a CLIP ViT-H image encode, every step "
                        "(ComfyUI's modules of the same architectures)")
    p.add_argument("--tflops", type=float, default=989.0,
                   help="rate for the time floor column (default: H100 SXM dense bf16/fp16 spec)")
    return p.parse_args(argv)


def storage_key(t):
    return t.untyped_storage()._cdata


class SavedBytes:
    """Bytes autograd saves for backward, each storage once, weights excluded, split by segment.

    Run with checkpointing off: each saved tensor is charged to the checkpoint target (of the mode
    being predicted) whose forward is running, or to 'outside'. Segment inputs are recorded too: with
    checkpointing on, they are what a segment keeps alive for its recompute.
    """

    def __init__(self, torch, weights, targets):
        self.torch, self.weights = torch, {storage_key(w) for w in weights}
        self.outside, self.segments, self.inputs, self.active = {}, [], {}, []
        self.handles = []
        for module in targets:
            self.handles.append(module.register_forward_pre_hook(self.enter, with_kwargs=True))
            self.handles.append(module.register_forward_hook(self.leave, with_kwargs=True))

    def enter(self, module, args, kwargs):
        if not self.active:
            self.segments.append({})
            for value in (*args, *kwargs.values()):
                if isinstance(value, self.torch.Tensor):
                    self.inputs[storage_key(value)] = value.untyped_storage().nbytes()
        self.active.append(module)

    def leave(self, module, args, kwargs, output):
        self.active.pop()

    def pack(self, t):
        key = storage_key(t)
        if key not in self.weights:
            (self.segments[-1] if self.active else self.outside)[key] = t.untyped_storage().nbytes()
        return t

    def close(self):
        for handle in self.handles:
            handle.remove()


@contextlib.contextmanager
def gpu_attention_kernel(torch, enabled):
    """On meta, SDPA falls back to its math path, which saves the whole attention matrix in fp32 for
    backward. On an NVIDIA GPU ComfyUI's SDPA runs a fused kernel that saves only q, k, v, the output
    and the log-sum-exp. Route ComfyUI's SDPA to that kernel's own op so its saved bytes and FLOPs are
    the GPU's."""
    import comfy.ops
    original = comfy.ops.scaled_dot_product_attention

    def fused(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, **kwargs):
        return torch.ops.aten._scaled_dot_product_efficient_attention(q, k, v, attn_mask, True, dropout_p,
                                                                      is_causal)[0]
    if enabled:
        comfy.ops.scaled_dot_product_attention = fused
    try:
        yield
    finally:
        comfy.ops.scaled_dot_product_attention = original


def build(opts, torch):
    import comfy.supported_models
    from reenact_testkit.small_models import full_svd_unet_config, init_weights, small_svd_unet_config
    dtype = getattr(torch, DTYPES[opts.dtype])
    config = comfy.supported_models.SVD_img2vid(full_svd_unet_config() if opts.model == "full"
                                                else small_svd_unet_config())
    config.set_inference_dtype(dtype, None)
    model = config.get_model({}, device=opts.device)
    if opts.device != "meta":
        init_weights(model.diffusion_model, 0)
    return model, dtype


def count(opts, torch, model, dtype, mode):
    """FLOPs of one step in `mode`, and the saved-bytes picture from a checkpointing-off pass."""
    from torch.utils.flop_counter import FlopCounterMode

    from reenact_core.inversion import DenoisingObjective, InversionSettings
    from reenact_core.layer_wrappers import checkpoint_targets
    from reenact_core.memory_mode import RunPlan
    from reenact_core.run_changes import changed_for_run
    device = torch.device(opts.device)
    patcher = SimpleNamespace(model=model, load_device=device, model_options={})
    g = torch.Generator().manual_seed(0)
    shape = (opts.frames, 4, opts.height // 8, opts.width // 8)
    latents = torch.randn(shape, generator=g).to(device)
    noise = torch.randn(shape, generator=g).to(device)
    objective = DenoisingObjective(patcher, latents, latents[:1], InversionSettings(steps=1, checkpointing=mode))
    dim = model.model_config.unet_config["context_dim"]
    tokens = torch.randn(opts.frames + 1, opts.tokens, dim, generator=g)
    tokens = tokens.to(device).requires_grad_(True)
    with torch.inference_mode(False), torch.enable_grad():
        with changed_for_run(model, RunPlan(mode, dtype, free_other_models=False)):
            with FlopCounterMode(display=False) as counter:
                loss = objective.loss(objective.model_conds(tokens), 1.0, noise)
                forward = counter.get_total_flops()
                loss.backward()
            total = counter.get_total_flops()
        saved = SavedBytes(torch, list(model.parameters()), checkpoint_targets(model.diffusion_model, mode))
        try:
            with changed_for_run(model, RunPlan("off", dtype, free_other_models=False)), \
                    torch.autograd.graph.saved_tensors_hooks(saved.pack, lambda t: t):
                objective.loss(objective.model_conds(tokens), 1.0, noise)
        finally:
            saved.close()
    weights = sum(p.numel() * p.element_size() for p in model.parameters()) / GB
    if mode == "off":
        kept = sum(saved.outside.values()) / GB
        largest = 0.0
    else:
        outside = dict(saved.outside)
        outside.update(saved.inputs)
        kept = sum(outside.values()) / GB
        largest = max((sum(s.values()) for s in saved.segments), default=0) / GB
    return {"checkpointing": mode, "flop_forward": forward, "flop_per_step": total, "tflop_forward": round(forward / 1e12, 3),
            "tflop_per_step": round(total / 1e12, 3), "weights_gb": round(weights, 3),
            "kept_between_segments_gb": round(kept, 3), "largest_segment_gb": round(largest, 3),
            "predicted_peak_gb": round(weights + kept + largest, 2),
            "floor_s_at_rate": round(total / 1e12 / opts.tflops, 4)}


def peer_encoder_tflop(opts, torch):
    """The encodes the peer's train_step runs every step, which ours runs once per run, counted on meta."""
    from torch.utils.flop_counter import FlopCounterMode

    import comfy.clip_model
    import comfy.ops
    import folder_paths
    from comfy.ldm.modules.diffusionmodules.model import Encoder
    config = os.path.join(os.path.dirname(folder_paths.__file__), "comfy", "clip_vision_config_h.json")
    dtype = getattr(torch, DTYPES[opts.dtype])
    with torch.device("meta"):
        vae_encoder = Encoder(ch=128, out_ch=3, ch_mult=(1, 2, 4, 4), num_res_blocks=2, attn_resolutions=[],
                              in_channels=3, resolution=256, z_channels=4, double_z=True).to(dtype)
        with open(config) as f:
            clip = comfy.clip_model.CLIPVisionModelProjection(json.load(f), dtype, torch.device("meta"),
                                                              comfy.ops.manual_cast)
    with torch.no_grad(), FlopCounterMode(display=False) as vae_count:
        vae_encoder(torch.empty(opts.frames + 1, 3, opts.height, opts.width, device="meta", dtype=dtype))
    with torch.no_grad(), FlopCounterMode(display=False) as clip_count:
        clip(torch.empty(1, 3, 224, 224, device="meta", dtype=dtype))
    return {"vae_encode_tflop": round(vae_count.get_total_flops() / 1e12, 3),
            "clip_encode_tflop": round(clip_count.get_total_flops() / 1e12, 3)}


def main(argv=None):
    opts = parse_args(argv)
    setup_comfy("cpu", "pytorch")
    import torch

    from flop_formulas import register_cpu_attention_formulas
    register_cpu_attention_formulas()
    model, dtype = build(opts, torch)
    with gpu_attention_kernel(torch, opts.device == "meta"):
        rows = [count(opts, torch, model, dtype, mode) for mode in opts.checkpointing]
    print(f"one inversion step, counted ({opts.device}): {opts.model} SVD UNet, {opts.frames}x{opts.height}x"
          f"{opts.width}, N={opts.tokens}, {opts.dtype}; floor at {opts.tflops:g} TFLOP/s")
    keys = [k for k in rows[0] if not k.startswith("flop_")]
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(str(row[k]) for k in keys) + " |")
    result = {"frames": opts.frames, "height": opts.height, "width": opts.width, "tokens": opts.tokens,
              "dtype": opts.dtype, "model": opts.model, "device": opts.device, "rows": rows}
    if opts.peer_encoders:
        result["peer_extra_per_step"] = peer_encoder_tflop(opts, torch)
        print(f"the peer's step also encodes, every step (TFLOP): {result['peer_extra_per_step']}")
    print(json.dumps(result))
    return rows


if __name__ == "__main__":
    main()

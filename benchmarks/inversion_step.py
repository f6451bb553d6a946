"""Time one real inversion step: the optimiser's own code path on ComfyUI's full-size SVD UNet.

Forward, backward to the embedding and an AdamW step, exactly as OptimizeMotionEmbedding runs
them (reenact_core.inversion.invert_motion), on random weights in SVD's architecture. Prints a
table, then as its LAST line one JSON object. Speed targets are read from that output, never
asserted by tests.

  python benchmarks/inversion_step.py --device cpu --frames 4 --height 128 --width 128 --steps 2
  python benchmarks/inversion_step.py --device cuda --frames 14 --height 576 --width 1024 --dtype bf16

--dtype is the dtype the weights are stored in (what ComfyUI's loader picked); --precision is the
compute dtype of the inversion (auto = the stored one). --attention selects ComfyUI's attention
implementation the way its CLI flags do (it is chosen once, at import). --compile is the node's own
compile option (reenact_core/layer_wrappers.py): the JSON then says how many graphs were compiled, how
many graph breaks were seen and how long the first step's compile took. --profile adds the time split by op
class (profile_split.py) over a few extra steps. --useful-tflop (count_step.py's checkpointing-off count at
this size) adds the share of the matmul rate counted on a step without recompute.
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
from reenact_cli.locate import setup_comfyui  # noqa: E402
from step_settings import add_step_settings  # noqa: E402

DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
ATTENTION_FLAGS = {"default": None, "pytorch": "use_pytorch_cross_attention",
                   "split": "use_split_cross_attention", "sub-quad": "use_quad_cross_attention"}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_step_settings(p)
    p.add_argument("--dtype", choices=sorted(DTYPES), default="bf16", help="weight storage dtype")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"], default="auto",
                   help="compute dtype of the inversion; auto = --dtype")
    p.add_argument("--checkpointing", choices=["blocks", "layers", "off", "budget"], default="blocks")
    p.add_argument("--memory-mode", choices=["balanced", "low_vram"], default="balanced")
    p.add_argument("--attention", choices=sorted(ATTENTION_FLAGS), default="default",
                   help="ComfyUI's attention implementation (default: what ComfyUI picks on this device)")
    p.add_argument("--compile", action="store_true", help="the node's compile option (torch.compile per layer)")
    p.add_argument("--profile", type=int, default=0, metavar="STEPS",
                   help="profile this many extra steps and add the time split by op class")
    p.add_argument("--useful-tflop", type=float, default=None,
                   help="FLOPs of one step without recompute at this size (count_step.py, checkpointing off)")
    p.add_argument("--model", choices=["full", "small"], default="full",
                   help="full: SVD's 1.52 B-parameter UNet; small: the test model")
    return p.parse_args(argv)


def setup_comfy(device, attention="default"):
    setup_comfyui(cpu=device == "cpu", flags=[ATTENTION_FLAGS[attention]] if ATTENTION_FLAGS[attention] else [])


def rss_gb(field):
    """VmRSS / VmHWM of this process from /proc, in GiB (CPU memory accounting)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 2 ** 20
    return float("nan")


def reset_peak_rss():
    """Linux resets VmHWM (peak RSS) to the current RSS when 5 is written to clear_refs."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def matmul_tflops(torch, device, dtype, n=8192, reps=20):
    """The device's measured dense matmul rate, the yardstick for achieved FLOP/s."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(reps):
        a @ b
    torch.cuda.synchronize()
    return 2 * n ** 3 * reps / (time.perf_counter() - start) / 1e12


def main(argv=None):
    opts = parse_args(argv)
    setup_comfy(opts.device, opts.attention)
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from flop_formulas import register_cpu_attention_formulas
    register_cpu_attention_formulas()

    import comfy.ldm.modules.attention
    from profile_split import time_split
    from reenact_core.inversion import InversionSettings, RunHooks, RunStats, invert_motion
    from reenact_core.memory_mode import plan_run
    from reenact_testkit.small_models import full_svd_unet_config, make_svd, small_svd_unet_config

    dtype = getattr(torch, DTYPES[opts.dtype])
    SHORT = {getattr(torch, v): k for k, v in DTYPES.items()}
    config = full_svd_unet_config() if opts.model == "full" else small_svd_unet_config()
    patcher = make_svd(config, seed=0, dtype=dtype)
    params = sum(p.numel() for p in patcher.model.diffusion_model.parameters())
    weights_gb = sum(p.numel() * p.element_size() for p in patcher.model.parameters()) / 2 ** 30
    dim = config["context_dim"]
    g = torch.Generator().manual_seed(0)
    latents = torch.randn(opts.frames, 4, opts.height // 8, opts.width // 8, generator=g)
    condition = latents[:1].clone()
    init = torch.randn(opts.frames + 1, opts.tokens, dim, generator=g)
    compile = "on" if opts.compile else "off"
    knobs = dict(checkpointing=opts.checkpointing, precision=opts.precision, memory_mode=opts.memory_mode,
                 seed=0, compile=compile)
    plan = plan_run(opts.memory_mode, opts.checkpointing, opts.precision, patcher.model, patcher.load_device,
                    compile)
    # FLOPs are counted on an eager step (a compiled one runs outside the counter's reach); the arithmetic is
    # the same, and "budget" is counted as "off" (what the partitioner recomputes is not known here).
    counted = dict(knobs, compile="off", checkpointing="off" if opts.checkpointing == "budget" else opts.checkpointing)
    settings = InversionSettings(steps=1, **counted)

    # CPU: the allocator keeps freed pages, so the run's own peak is measured from before the first run
    before_gb = rss_gb("VmRSS") if opts.device == "cpu" and reset_peak_rss() else float("nan")
    saved = {}
    weights = {p.untyped_storage().data_ptr() for p in patcher.model.parameters()}

    def pack(t):
        """Tensors autograd keeps for backward outside checkpointed segments, each storage once."""
        ptr = t.untyped_storage().data_ptr()
        if ptr not in weights:
            saved[ptr] = t.untyped_storage().nbytes()
        return t

    with FlopCounterMode(display=False) as counter, torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        invert_motion(patcher, latents, condition, init, settings=settings)
    flop_per_step = counter.get_total_flops()

    cuda = opts.device == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    stamps = []

    def on_step(step, total, loss):
        if cuda:
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())

    timed = InversionSettings(steps=opts.warmup + opts.steps + 1, **knobs)
    stats = RunStats()
    invert_motion(patcher, latents, condition, init, settings=timed, hooks=RunHooks(on_step=on_step),
                  stats=stats)
    per_step = [b - a for a, b in zip(stamps[opts.warmup:], stamps[opts.warmup + 1:])]
    s_per_step = statistics.median(per_step)
    if cuda:
        peak_gb = torch.cuda.max_memory_allocated() / 2 ** 30
        run_extra_gb = peak_gb - weights_gb
    else:
        peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20  # process peak RSS
        run_extra_gb = rss_gb("VmHWM") - before_gb  # peak since the reset before the first run
    split = None
    if opts.profile:
        from torch.profiler import ProfilerActivity, profile
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
        with profile(activities=activities) as prof:
            invert_motion(patcher, latents, condition, init, settings=InversionSettings(steps=opts.profile, **knobs))
            if cuda:
                torch.cuda.synchronize()
        split = time_split(prof, opts.device)
    achieved = flop_per_step / s_per_step / 1e12
    result = {"device": opts.device, "model": opts.model, "params": params, "frames": opts.frames,
              "height": opts.height, "width": opts.width, "tokens": opts.tokens,
              "dtype": SHORT[plan.dtype], "weight_dtype": opts.dtype, "checkpointing": plan.checkpointing,
              "memory_mode": opts.memory_mode, "attention": comfy.ldm.modules.attention.optimized_attention.__name__,
              "compile": opts.compile, "compiled_graphs": stats.compile.graphs if stats.compile else 0,
              "graph_breaks": stats.compile.graph_breaks if stats.compile else 0,
              "compile_s": round(stats.compile_seconds, 2) if stats.compile else 0.0,
              "s_per_step": round(s_per_step, 4),
              "peak_mem_gb": round(peak_gb, 3),
              "run_extra_mem_gb": round(run_extra_gb, 3), "saved_for_backward_gb": round(sum(saved.values()) / 2 ** 30, 4), "tflop_per_step": round(flop_per_step / 1e12, 4),
              "achieved_tflops": round(achieved, 4)}
    if opts.useful_tflop:
        result["useful_tflop_per_step"] = opts.useful_tflop
    if stats.compile and stats.compile.break_reasons:
        result["graph_break_reasons"] = list(stats.compile.break_reasons)
    if split:
        result["time_split"] = split
    if cuda:
        rate = matmul_tflops(torch, "cuda", torch.bfloat16)
        result.update(device_name=torch.cuda.get_device_name(), bf16_matmul_tflops=round(rate, 1),
                      fraction_of_matmul_rate=round(achieved / rate, 3))
        if opts.useful_tflop:
            result["useful_fraction_of_matmul_rate"] = round(opts.useful_tflop / s_per_step / rate, 3)
    width = max(len(k) for k in result)
    print("inversion step benchmark")
    for k, v in result.items():
        print(f"  {k:<{width}}  {v}")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()

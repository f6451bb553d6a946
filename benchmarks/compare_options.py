"""Interleaved A/B timing of inversion options in one process, for shared, noisy machines.

inversion_step.py times one configuration per process; on a machine other jobs share, the load
changes between processes more than the options change the time. Here the configurations take
turns, round after round, on the same model and inputs, and the median per configuration is
printed, so slow spells hit every configuration alike. Last line: one JSON object.

  python benchmarks/compare_options.py --model small --frames 8 --height 128 --width 128 --rounds 5
"""
import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from inversion_step import setup_comfy  # noqa: E402

CONFIGS = [("fp32", "off"), ("fp32", "blocks"), ("fp32", "layers"), ("bf16", "off"), ("fp16", "off"),
           ("bf16", "layers")]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--model", choices=["full", "small"], default="small")
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--height", type=int, default=128)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--tokens", type=int, default=5)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=2, help="timed steps per turn")
    opts = p.parse_args(argv)
    setup_comfy(opts.device)
    import torch

    from reenact_core.inversion import InversionSettings, RunHooks, invert_motion
    from reenact_testkit.small_models import full_svd_unet_config, make_svd, small_svd_unet_config

    config = full_svd_unet_config() if opts.model == "full" else small_svd_unet_config()
    patcher = make_svd(config, seed=0)
    g = torch.Generator().manual_seed(0)
    latents = torch.randn(opts.frames, 4, opts.height // 8, opts.width // 8, generator=g)
    init = torch.randn(opts.frames + 1, opts.tokens, config["context_dim"], generator=g)
    sync = torch.cuda.synchronize if opts.device == "cuda" else (lambda: None)
    times = {c: [] for c in CONFIGS}
    for _ in range(opts.rounds + 1):  # the first round warms up and is dropped
        for precision, ckpt in CONFIGS:
            stamps = []
            settings = InversionSettings(steps=opts.steps + 1, precision=precision, checkpointing=ckpt)

            def on_step(step, total, loss):
                sync()
                stamps.append(time.perf_counter())
            invert_motion(patcher, latents, latents[:1].clone(), init, settings=settings,
                          hooks=RunHooks(on_step=on_step))
            times[(precision, ckpt)].append((stamps[-1] - stamps[0]) / opts.steps)
    result = {f"{prec}/{ckpt}": round(statistics.median(t[1:]), 4) for (prec, ckpt), t in times.items()}
    base = result["fp32/off"]
    print(f"median s/step over {opts.rounds} interleaved rounds ({opts.model}, {opts.frames}x{opts.height}x"
          f"{opts.width}, {opts.device})")
    for name, s in result.items():
        print(f"  {name:<12} {s:8.4f}  x{s / base:.2f} of fp32/off")
    print(json.dumps({"device": opts.device, "model": opts.model, "frames": opts.frames, "height": opts.height,
                      "width": opts.width, "rounds": opts.rounds, "s_per_step": result}))


if __name__ == "__main__":
    main()

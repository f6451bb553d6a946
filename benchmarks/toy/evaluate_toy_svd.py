"""Does the toy SVD obey its own conditioning? Sample with ComfyUI's KSampler and track the blob.

    python benchmarks/toy/evaluate_toy_svd.py [--videos 100] [--steps 12] [--cfg 1.0] [--seeds 0 1 2]

For each held-out video (seed 10000 + 1000 * s, never drawn in training) the first frame and a set
of tokens go through the pack's conditioning transform and ComfyUI's KSampler (euler, karras);
the blob centre is tracked in every sampled frame (colour-projected centroid) and compared with
the ground-truth path. A video "matches" when the mean centre error over frames 1..F-1 is under
0.75 latent px and the last frame's is under 1 px (toy_world.matches).
Modes: true (its own ground-truth tokens), wrong (the next video's tokens), plain (the null
pooled token, i.e. SVD conditioning without motion tokens).
"""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", ".."))
from reenact_cli.locate import setup_comfyui  # noqa: E402

setup_comfyui(cpu=True)
import torch  # noqa: E402
import comfy.utils  # noqa: E402

from reenact_toy import toy_svd, toy_world  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fixture", default=toy_svd.FIXTURE)
    p.add_argument("--videos", type=int, default=100)
    p.add_argument("--steps", type=int, default=toy_svd.SAMPLE_STEPS)
    p.add_argument("--cfg", type=float, default=toy_svd.SAMPLE_CFG)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--modes", nargs="+", default=["true", "wrong", "plain"])
    p.add_argument("--threads", type=int, default=1)
    opts = p.parse_args()
    torch.set_num_threads(opts.threads)
    comfy.utils.PROGRESS_BAR_ENABLED = False
    patcher = toy_svd.load_toy_svd(opts.fixture)
    for s in opts.seeds:
        seed = 10_000 + 1000 * s
        videos = toy_world.make_videos(opts.videos, seed)
        for mode in opts.modes:
            start = time.time()
            frac, errors = toy_svd.obedience(patcher, videos, mode, seed=seed, steps=opts.steps, cfg=opts.cfg)
            kinds = {k: [e[2] for v, e in zip(videos, errors) if v.kind == k] for k in toy_world.KINDS}
            by_kind = ", ".join(f"{k} {sum(m) / len(m):.2f}/{len(m)}" for k, m in kinds.items() if m)
            mean_err = sum(e[0] for e in errors) / len(errors)
            print(f"seed {s} {mode:5s}: obedience {frac:.3f}  mean path error {mean_err:.2f} px  [{by_kind}]  "
                  f"{(time.time() - start) / len(videos):.2f} s/video", flush=True)


if __name__ == "__main__":
    main()

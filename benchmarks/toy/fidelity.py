"""Motion-transfer fidelity on the toy SVD: inversion vs plain conditioning, shared token and N tokens.

    python benchmarks/toy/fidelity.py [--cases 8] [--seed 30000] [--steps 100] [--lr 3e-2]
                                      [--methods plain shared n1 n5 n15] [--init-noise 0.01] [--threads 1]
    python benchmarks/toy/fidelity.py --through-nodes [--methods plain n1 n5 n15] ...

Each case: a held-out reference video (seed --seed) is inverted, the tokens are applied to a target
first frame of another colour, width and start, and ComfyUI's KSampler samples the video
(reenact_testkit.toy_fidelity). Two paths:
- core (default, 12x12 latents, the toy's training size): reenact_core.inversion.invert_motion (what
  OptimizeMotionEmbedding calls; shared: the same loss, one token tied over all slots), then
  reenact_core.motion_conditioning (what ApplyMotionEmbedding uses) and common_ksampler;
- --through-nodes (16x16 latents = 128 px, the smallest size the nodes take): the pack's nodes as a
  user's graph runs them, LoadMotionReference -> OptimizeMotionEmbedding -> ApplyMotionEmbedding ->
  KSampler -> VAEDecode, with the toy codec VAE in ComfyUI's VAE wrapper; plain is strength 0.
Scores: fraction matching (toy_world.matches against the reference path displaced to the target's
start), mean/end path error (px), blob colour cosine with the target's and the reference's colour,
per-frame correlation with the target blob rendered at the tracked centre, frame-0 correlation.
Prints a markdown table and, last, one JSON line.
"""
import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", ".."))
from reenact_cli.locate import setup_comfyui  # noqa: E402

setup_comfyui(cpu=True)
import torch  # noqa: E402
import comfy.utils  # noqa: E402

from reenact_testkit import toy_fidelity  # noqa: E402
from reenact_toy import toy_svd  # noqa: E402

METHODS = {"true": ("true", 1), "plain": ("plain", 1), "shared": ("shared", 1),
           "n1": ("per_frame", 1), "n5": ("per_frame", 5), "n15": ("per_frame", 15)}
LABELS = {"true": "ground-truth tokens (ceiling)", "plain": "plain conditioning (null token)",
          "shared": "one shared token (F'=1)", "n1": "per-frame, N=1", "n5": "per-frame, N=5",
          "n15": "per-frame, N=15"}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", type=int, default=8)
    p.add_argument("--seed", type=int, default=30_000)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--lr", type=float, default=3e-2)
    p.add_argument("--methods", nargs="+", default=["plain", "shared", "n1", "n5", "n15"], choices=list(METHODS))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--init-noise", type=float, default=toy_fidelity.INIT_NOISE,
                   help="std of the seeded noise on the null-token init (distinct tokens for N > 1)")
    p.add_argument("--through-nodes", action="store_true",
                   help="run the pack's nodes (LoadMotionReference -> OptimizeMotionEmbedding -> ApplyMotionEmbedding "
                        "-> KSampler -> VAEDecode) with the toy codec VAE, at 16x16 latents (128 px); methods plain "
                        "(strength 0) and n1/n5/n15")
    opts = p.parse_args()
    if opts.through_nodes and {"true", "shared"} & set(opts.methods):
        p.error("--through-nodes runs plain, n1, n5 and n15 (no node gives ground-truth or shared tokens)")
    torch.set_num_threads(opts.threads)
    comfy.utils.PROGRESS_BAR_ENABLED = False
    patcher = toy_svd.load_toy_svd()
    if opts.through_nodes:
        from reenact_testkit.comfy_pack import load_pack
        from reenact_toy.toy_codec import make_toy_vae
        load_pack()
        vae = make_toy_vae()
    size = toy_fidelity.NODE_SIZE if opts.through_nodes else toy_fidelity.toy_world.SIZE
    cases = toy_fidelity.make_cases(opts.cases, opts.seed, size=size)
    rows = {}
    for name in opts.methods:
        method, n = METHODS[name]
        start, results = time.time(), []
        for i, case in enumerate(cases):
            seed = opts.seed + i
            if opts.through_nodes:
                embedding = toy_fidelity.invert_through_nodes(patcher, vae, case, 1 if method == "plain" else opts.steps,
                                                              seed, opts.lr, n, opts.init_noise)
                results.append(toy_fidelity.transfer_through_nodes(patcher, vae, case, embedding, seed,
                                                                   strength=0.0 if method == "plain" else 1.0))
                continue
            settings = toy_fidelity.settings_with(steps=opts.steps, learning_rate=opts.lr, seed=seed)
            results.append(toy_fidelity.run_case(patcher, case, method, n, settings, seed, opts.init_noise))
        summary = toy_fidelity.summarise(results)
        summary["seconds_per_case"] = (time.time() - start) / len(cases)
        summary["per_case_match"] = [bool(r["match"]) for r in results]
        rows[name] = summary
        print(f"# {name}: {json.dumps({k: v for k, v in summary.items()})}", file=sys.stderr, flush=True)
    print(f"{opts.cases} cases (seed {opts.seed}), {opts.steps} inversion steps, lr {opts.lr:g}, init noise "
          f"{opts.init_noise:g}, {'through the nodes, 16x16 latents' if opts.through_nodes else 'core path, 12x12'}, "
          f"sampling euler/karras {toy_svd.SAMPLE_STEPS} steps cfg {toy_svd.SAMPLE_CFG:g}\n")
    print("| method | matches | mean path err (px) | end err (px) | colour cos target / reference | "
          "appearance corr | frame-0 corr | s/case |")
    print("|---|---|---|---|---|---|---|---|")
    for name, s in rows.items():
        print(f"| {LABELS[name]} | {s['match']:.2f} | {s['mean_err']:.2f} | {s['end_err']:.2f} | "
              f"{s['colour_cos_target']:.3f} / {s['colour_cos_reference']:.3f} | {s['appearance_corr']:.3f} | "
              f"{s['first_frame_corr']:.3f} | {s['seconds_per_case']:.1f} |")
    print(json.dumps({"cases": opts.cases, "seed": opts.seed, "steps": opts.steps, "lr": opts.lr,
                      "init_noise": opts.init_noise, "through_nodes": opts.through_nodes, "results": rows}))


if __name__ == "__main__":
    main()

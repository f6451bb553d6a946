"""The SVD-like toy (trained with no motion token): what it does unprompted, and whether inversion transfers motion.

    python benchmarks/toy/svdlike_finding.py unprompted                 # plain sampling: first frame, speed by bucket
    python benchmarks/toy/svdlike_finding.py methods --steps 400        # the paper's finding, the table
    python benchmarks/toy/svdlike_finding.py methods --cases 1 --steps 5 --methods plain per_frame   # smoke
    python benchmarks/toy/svdlike_finding.py methods --on reference --init null   # reconstruction, another init

`methods` inverts held-out references (training kinds and kinds never trained on) and transfers them to new first
frames (reenact_testkit/svdlike_fidelity.py), for each method, seed and case; prints a markdown table and, last, one
JSON line. `--fixture` evaluates another weights file (a training snapshot).
"""
import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import replace

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
from reenact_cli.locate import setup_comfyui  # noqa: E402

setup_comfyui()
import torch  # noqa: E402

from reenact_testkit import svdlike_fidelity, toy_fidelity  # noqa: E402
from reenact_toy import svdlike_toy, svdlike_world, toy_clip_vision  # noqa: E402

METHODS = ("plain", "oracle", "per_frame", "shared", "temporal")


def spread(values):
    values = [float(v) for v in values]
    return f"{statistics.mean(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def unprompted(patcher, clip, args):
    """Plain sampling from held-out first frames: is frame 0 kept, how far and how smoothly the blob moves, by bucket."""
    rows = []
    gen = torch.Generator().manual_seed(args.case_seed)
    for i in range(args.cases):
        video, fps, _ = svdlike_world.make_video(gen)
        for bucket in args.buckets:
            rows.append(svdlike_fidelity.plain_motion(patcher, clip, video, fps, bucket, args.case_seed + i))
    print("| motion_bucket_id | frame-0 correlation | frame-0 centre error (px) | speed (px/frame) | "
          "net displacement (px) | speed change per frame (px) |")
    print("|---|---|---|---|---|---|")
    for bucket in args.buckets:
        sel = [r for r in rows if r["bucket"] == bucket]
        print(f"| {bucket} | " + " | ".join(spread(r[k] for r in sel) for k in
                                            ("first_frame_corr", "start_err", "speed", "net", "jerk")) + " |")
    return rows


def methods(patcher, clip, args):
    kinds = svdlike_fidelity.CASE_KINDS
    cases = svdlike_fidelity.make_cases(args.cases, args.case_seed, kinds)
    if args.on == "reference":
        cases = svdlike_fidelity.reconstruction_cases(cases)
    elif args.on == "same-colour":
        cases = svdlike_fidelity.same_colour_cases(cases)
    base = replace(toy_fidelity.DEFAULT_SETTINGS, steps=args.steps, learning_rate=args.lr,
                   sigma_log_mean=args.sigma[0], sigma_log_std=args.sigma[1])
    results = {}
    started = time.perf_counter()
    for method in args.methods:
        variants = [(method, n) for n in args.tokens] if method == "per_frame" else [(method, 1)]
        for name, n in variants:
            label = f"per_frame N={n}" if name == "per_frame" else name
            rows = []
            for seed in args.seeds:
                for i, case in enumerate(cases):
                    row = svdlike_fidelity.run_case(patcher, clip, case, name, n, replace(base, seed=seed),
                                                    args.case_seed + i, init=args.init)
                    rows.append(dict(row, kind=case.reference.kind, held_out_kind=case.reference.kind in
                                     svdlike_world.HELD_OUT_KINDS, seed=seed))
            results[label] = rows
            print(f"{label}: {time.perf_counter() - started:.0f} s so far", file=sys.stderr, flush=True)
    print(f"| method ({args.steps} steps, lr {args.lr}, init {args.init}, on the {args.on}) | "
          "matches: all / trained kinds / held-out kinds | mean path error (px) | colour cos with target |")
    print("|---|---|---|---|")
    for label, rows in results.items():
        trained = [r for r in rows if not r["held_out_kind"]]
        held = [r for r in rows if r["held_out_kind"]]
        print(f"| {label} | {sum(r['match'] for r in rows)}/{len(rows)} / {sum(r['match'] for r in trained)}/"
              f"{len(trained)} / {sum(r['match'] for r in held)}/{len(held)} | {spread(r['mean_err'] for r in rows)} | "
              f"{spread(r['colour_cos_target'] for r in rows)} |")
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("unprompted", "methods"))
    parser.add_argument("--fixture", default=svdlike_toy.FIXTURE)
    parser.add_argument("--cases", type=int, default=7)
    parser.add_argument("--case-seed", type=int, default=70_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--buckets", type=int, nargs="+", default=[32, 127, 220])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--tokens", type=int, nargs="+", default=[1, 5], help="N for per_frame")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--lr", type=float, default=toy_fidelity.DEFAULT_SETTINGS.learning_rate)
    parser.add_argument("--init", choices=svdlike_fidelity.INITS, default="clip",
                        help="where the learned tokens start (reenact_testkit/svdlike_fidelity.py)")
    parser.add_argument("--on", choices=("target", "reference", "same-colour"), default="target",
                        help="sample on the target's first frame (transfer), the reference's own (reconstruction), "
                             "or the target's re-rendered in the reference's colour")
    parser.add_argument("--sigma", type=float, nargs=2, default=(0.7, 1.6), metavar=("LOG_MEAN", "LOG_STD"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    import comfy.utils
    comfy.utils.PROGRESS_BAR_ENABLED = False
    patcher = svdlike_toy.load_svdlike_toy(args.fixture)
    clip = toy_clip_vision.load()
    started = time.perf_counter()
    results = unprompted(patcher, clip, args) if args.what == "unprompted" else methods(patcher, clip, args)
    print(json.dumps({"args": {k: v for k, v in vars(args).items()}, "seconds": round(time.perf_counter() - started, 1),
                      "results": results}))


if __name__ == "__main__":
    main()

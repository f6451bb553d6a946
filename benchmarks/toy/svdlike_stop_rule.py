"""When has the SVD-like toy learned a motion, and which stop rule sees it (issue 32, "the stop rule, re-chosen").

    python benchmarks/toy/svdlike_stop_rule.py --out stop.jsonl                       # 6 cases, seed 0, 1000 steps
    python benchmarks/toy/svdlike_stop_rule.py --out stop.jsonl --table               # the table from the file
    python benchmarks/toy/svdlike_stop_rule.py --out /tmp/s.jsonl --cases 1 --max-steps 50 --every 25   # smoke

For each case, one run of --max-steps at the pack's own settings (the node's defaults, with the row's levers) with no
stop, keeping the tokens at every held-out evaluation (evaluating never changes the run: tests/test_held_out.py).
Each kept token set is sampled on the reference's own first frame (reconstruction) and on the target's (transfer);
the "learned" step is the first whose path error is within 0.1 px of the last step's. Candidate rules are replayed
on the same run: the default (StopRule on the held-out loss), longer patience, a floor on steps, and the same rule
on a held-out loss at high noise only (where motion is decided), evaluated on the kept tokens afterwards.
Each finished case is one JSON line in --out (resumable).
"""
import argparse
import json
import os
import statistics
import sys
from dataclasses import replace

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
from reenact_cli.locate import setup_comfyui  # noqa: E402

setup_comfyui()
import torch  # noqa: E402

from reenact_core.held_out import StopRule, held_out_loss, held_out_sigmas  # noqa: E402
from reenact_core.inversion import (DEFAULTS, DenoisingObjective, InversionSettings, RunHooks,  # noqa: E402
                                    invert_motion)
from reenact_testkit import svdlike_fidelity  # noqa: E402
from reenact_toy import svdlike_toy, toy_clip_vision  # noqa: E402
from time_to_motion import stop_step  # noqa: E402  (benchmarks/toy/, this script's own folder)

WITHIN_PX = 0.1
HIGH_QUANTILES = (0.6, 0.7, 0.8, 0.9)  # the high-noise held-out loss: sigmas at these quantiles of the run's own


def rules(every):
    """name -> (which held-out history it reads, StopRule, the least steps before it may stop)."""
    p, m = DEFAULTS.stop_patience, DEFAULTS.stop_min_improvement
    return {f"default (patience {p}, {m:g})": ("all", StopRule(p, m), 0),
            f"patience {2 * p}": ("all", StopRule(2 * p, m), 0),
            f"patience {4 * p}": ("all", StopRule(4 * p, m), 0),
            "default, never before 400": ("all", StopRule(p, m), 400),
            f"high-noise held-out, patience {p}": ("high", StopRule(p, m), 0),
            f"high-noise held-out, patience {2 * p}": ("high", StopRule(2 * p, m), 0)}


def high_noise_draws(seed, settings, shape, model_sampling):
    generator = torch.Generator().manual_seed(seed + 0x51)
    sigmas = held_out_sigmas(len(HIGH_QUANTILES), settings.sigma_log_mean, settings.sigma_log_std,
                             float(model_sampling.sigma_min), float(model_sampling.sigma_max), HIGH_QUANTILES)
    return [(sigma, torch.randn(shape, generator=generator)) for sigma in sigmas]


def one_case(patcher, clip, case, recon, settings, sample_seed, n):
    settings = replace(settings, fps=case.fps, motion_bucket_id=case.bucket, stop_when_learned=False,
                       preview_every=settings.held_out_every)
    ref = case.reference.latents
    init = svdlike_fidelity.initial_tokens(clip, case, n, settings.seed)
    snapshots, history = {0: init.clone()}, []
    hooks = RunHooks(on_preview=lambda step, tokens: snapshots.__setitem__(step, tokens),
                     on_held_out=lambda step, total, loss: history.append((step, loss)))
    invert_motion(patcher, ref, ref[:1], init, settings=settings, hooks=hooks)
    objective = DenoisingObjective(patcher, ref, ref[:1], settings)
    draws = high_noise_draws(settings.seed, settings, objective.x0.shape, objective.model.model_sampling)
    steps = sorted(snapshots)
    high = [(s, held_out_loss(objective, snapshots[s], draws)) for s in steps]
    recon_err = {s: svdlike_fidelity.transfer(patcher, clip, recon, snapshots[s], sample_seed)["mean_err"]
                 for s in steps}
    transfer_err = {s: svdlike_fidelity.transfer(patcher, clip, case, snapshots[s], sample_seed)["mean_err"]
                    for s in steps}
    return dict(held_out=history, held_out_high=high, reconstruction=recon_err, transfer=transfer_err)


def learned_step(errors: dict, last: int):
    return next(s for s in sorted(errors) if errors[s] <= errors[last] + WITHIN_PX)


def table(rows, every, max_steps):
    print(f"| rule | stops at (steps) | stop / learned step (reconstruction) | stops before learned | "
          f"reconstruction error at the stop - at {max_steps} (px) |")
    print("|---|---|---|---|---|")
    for name, (which, rule, floor) in rules(every).items():
        stops, ratios, early, extra = [], [], 0, []
        for r in rows:
            history = [(int(s), l) for s, l in (r["held_out"] if which == "all" else r["held_out_high"])]
            recon = {int(k): v for k, v in r["reconstruction"].items()}
            stop = stop_step(history, every, rule, max_steps, floor)
            learned = learned_step(recon, max_steps)
            stops.append(stop)
            ratios.append(stop / max(learned, every))
            early += stop < learned
            extra.append(recon[stop] - recon[max_steps])
        print(f"| {name} | {statistics.median(stops):.0f} ({min(stops)}-{max(stops)}) | "
              f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f}) | {early}/{len(rows)} | "
              f"{statistics.mean(extra):+.2f} |")
    learned = [learned_step({int(k): v for k, v in r["reconstruction"].items()}, max_steps) for r in rows]
    last = [r["reconstruction"][str(max_steps)] if str(max_steps) in r["reconstruction"]
            else r["reconstruction"][max_steps] for r in rows]
    print(f"\nlearned (reconstruction within {WITHIN_PX} px of step {max_steps}): median step "
          f"{statistics.median(learned):.0f} ({min(learned)}-{max(learned)}); error at {max_steps}: "
          f"{statistics.mean(last):.2f} px")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--table", action="store_true")
    parser.add_argument("--cases", type=int, default=6)
    parser.add_argument("--case-seed", type=int, default=70_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--max-steps", type=int, default=1000)
    parser.add_argument("--every", type=int, default=DEFAULTS.held_out_every)
    parser.add_argument("--tokens", type=int, default=5)
    parser.add_argument("--lever", default="{}", help="JSON of InversionSettings fields (a lever) on the defaults")
    args = parser.parse_args(argv)
    if args.table:
        with open(args.out) as f:
            rows = [r for r in map(json.loads, f) if r and r["max_steps"] == args.max_steps]
        table(rows, args.every, args.max_steps)
        return
    torch.set_num_threads(1)
    import comfy.utils
    comfy.utils.PROGRESS_BAR_ENABLED = False
    patcher, clip = svdlike_toy.load_svdlike_toy(), toy_clip_vision.load()
    cases = svdlike_fidelity.make_cases(args.cases, args.case_seed, svdlike_fidelity.CASE_KINDS)
    recon = svdlike_fidelity.reconstruction_cases(cases)
    done = set()
    if os.path.exists(args.out):
        with open(args.out) as f:
            done = {(r["case"], r["seed"], r["lever"], r["max_steps"]) for r in map(json.loads, f) if r}
    base = replace(InversionSettings(), checkpointing="off", precision="fp32", steps=args.max_steps,
                   held_out_every=args.every, **json.loads(args.lever))
    for seed in args.seeds:
        for i, case in enumerate(cases):
            if (i, seed, args.lever, args.max_steps) in done:
                continue
            row = one_case(patcher, clip, case, recon[i], replace(base, seed=seed), args.case_seed + i, args.tokens)
            with open(args.out, "a") as f:
                f.write(json.dumps(dict(row, case=i, seed=seed, lever=args.lever, max_steps=args.max_steps)) + "\n")
            print(f"case {i} seed {seed} done", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()

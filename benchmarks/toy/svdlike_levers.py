"""Levers against a motion bound to the reference's look, on the SVD-like toy: the table of issue 32.

    python benchmarks/toy/svdlike_levers.py run --out levers.jsonl                   # every row, resumable
    python benchmarks/toy/svdlike_levers.py run --out levers.jsonl --rows plain augment_0.5
    python benchmarks/toy/svdlike_levers.py table --out levers.jsonl                 # the markdown table
    python benchmarks/toy/svdlike_levers.py run --out /tmp/smoke.jsonl --cases 1 --seeds 0 --steps 4   # smoke

Each learned row inverts every case's reference once per seed with the pack's own path (Inflate CLIP Embedding's
init, invert_motion with the row's InversionSettings, appearance copies through the toy's VAE as the node makes them:
reenact_testkit/svdlike_fidelity.py) and samples three times from the same tokens: on the target's first frame
(transfer), on it with Apply Motion Embedding's look swap (transfer, swapped), and on the reference's own first frame
(reconstruction). Each finished (row, seed, case) is one JSON line in --out, so a stopped run goes on where it was.
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

from reenact_core.inversion import InversionSettings, RunStats  # noqa: E402
from reenact_testkit import svdlike_fidelity, toy_fidelity  # noqa: E402
from reenact_toy import svdlike_toy, svdlike_world, toy_clip_vision  # noqa: E402

# Each row: the InversionSettings fields it changes from the benchmark's base (--steps, --lr, fixed steps, N=5).
ROWS = {
    "plain": None, "oracle": None,
    "method": {},
    "augment_0.25": dict(augment_copies=8, augment_strength=0.25),
    "augment_0.5": dict(augment_copies=8, augment_strength=0.5),
    "augment_1.0": dict(augment_copies=8, augment_strength=1.0),
    "augment_colour_1.0": dict(augment_copies=8, augment_strength=1.0, augment_changes="colour"),
    "augment_geometry_1.0": dict(augment_copies=8, augment_strength=1.0, augment_changes="geometry"),
    "debiased_0.5": dict(debiased_loss_weight=0.5),
    "debiased_1": dict(debiased_loss_weight=1.0),
    "debiased_only": dict(plain_loss_weight=0.0, debiased_loss_weight=1.0),
    "frame_diff_1": dict(frame_difference_loss_weight=1.0),
    "augment_1.0+debiased_1": dict(augment_copies=8, augment_strength=1.0, debiased_loss_weight=1.0),
    "high_sigma": dict(sigma_log_mean=2.8, sigma_log_std=1.6),
    "slot": dict(appearance_slot=True),
    "slot+augment_1.0": dict(appearance_slot=True, augment_copies=8, augment_strength=1.0),
    "slot+augment_colour_1.0": dict(appearance_slot=True, augment_copies=8, augment_strength=1.0,
                                    augment_changes="colour"),
    # the pack's defaults as a user got them before this table: lr 1e-2, at most 1000 steps, stop_when_learned on (the
    # defaults now, with the stop off, are svdlike_stop_rule.py's runs: 1000 steps)
    "pack_defaults": "defaults",
}


def base_settings(args):
    return replace(toy_fidelity.DEFAULT_SETTINGS, steps=args.steps, learning_rate=args.lr)


def row_settings(name, args):
    change = ROWS[name]
    if change == "defaults":
        return replace(InversionSettings(), checkpointing="off", precision="fp32", stop_when_learned=True)
    return replace(base_settings(args), **change)


def done_keys(path):
    if not os.path.exists(path):
        return set()
    with open(path) as f:
        return {(r["row"], r["seed"], r["case"], r.get("fixture")) for r in map(json.loads, f) if r}


def run(args):
    patcher = svdlike_toy.load_svdlike_toy(args.fixture)
    clip = toy_clip_vision.load()
    cases = svdlike_fidelity.make_cases(args.cases, args.case_seed, svdlike_fidelity.CASE_KINDS)
    recon = svdlike_fidelity.reconstruction_cases(cases)
    fixture = os.path.basename(args.fixture)
    done = done_keys(args.out)
    for name in args.rows:
        for seed in args.seeds:
            for i, case in enumerate(cases):
                if (name, seed, i, fixture) in done:
                    continue
                started = time.perf_counter()
                sample_seed = args.case_seed + i
                row = dict(row=name, seed=seed, case=i, kind=case.reference.kind, fixture=fixture,
                           held_out_kind=case.reference.kind in svdlike_world.HELD_OUT_KINDS)
                if name in ("plain", "oracle"):
                    if seed != args.seeds[0]:
                        continue  # no inversion: the seed does not enter
                    result = svdlike_fidelity.run_case(patcher, clip, case, name, 1, base_settings(args), sample_seed)
                    recon_result = svdlike_fidelity.run_case(patcher, clip, recon[i], name, 1, base_settings(args),
                                                             sample_seed)
                    row.update(transfer=result, reconstruction=recon_result)
                else:
                    settings = replace(row_settings(name, args), seed=seed, fps=case.fps, motion_bucket_id=case.bucket)
                    stats = RunStats()
                    init = svdlike_fidelity.initial_tokens(clip, case, args.tokens, seed)
                    tokens, losses = svdlike_fidelity.invert(patcher, case, init, settings, stats, clip)
                    slot = settings.appearance_slot
                    row.update(
                        transfer=svdlike_fidelity.transfer(patcher, clip, case, tokens, sample_seed, slot=slot),
                        transfer_swapped=svdlike_fidelity.transfer(patcher, clip, case, tokens, sample_seed,
                                                                   swap_look=True, slot=slot),
                        reconstruction=svdlike_fidelity.transfer(patcher, clip, recon[i], tokens, sample_seed,
                                                                 slot=slot),
                        steps_run=len(losses), stopped_at=stats.stopped_at,
                        s_per_step=statistics.median(stats.step_seconds) if stats.step_seconds else None)
                row["seconds"] = round(time.perf_counter() - started, 1)
                with open(args.out, "a") as f:
                    f.write(json.dumps(row) + "\n")
                print(f"{name} seed {seed} case {i}: transfer {row['transfer']['mean_err']:.2f} px, "
                      f"{row['seconds']} s", file=sys.stderr, flush=True)


def spread(values):
    values = [float(v) for v in values]
    if not values:
        return "-"
    return f"{statistics.mean(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def seed_spread(rows, key):
    """Mean path error per seed, then the mean and range of those: the seeds' spread."""
    by_seed = {}
    for r in rows:
        by_seed.setdefault(r["seed"], []).append(r[key]["mean_err"])
    return spread(statistics.mean(v) for v in by_seed.values())


def table(args):
    with open(args.out) as f:
        rows = [r for r in map(json.loads, f) if r and r.get("fixture") == os.path.basename(args.fixture)]
    print("| row | seeds | transfer matches | transfer path error (px): mean of the seeds' means (their range) | "
          "colour cos with target | with the look swapped: matches, path error, colour cos | reconstruction path "
          "error (px) | s/step (median) | steps run |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in ROWS:
        sel = [r for r in rows if r["row"] == name]
        if not sel:
            continue
        swapped = [r for r in sel if "transfer_swapped" in r]
        step = [r["s_per_step"] for r in sel if r.get("s_per_step")]
        steps_run = [r["steps_run"] for r in sel if r.get("steps_run")]
        seeds = ",".join(str(seed) for seed in sorted({r["seed"] for r in sel}))
        cells = [name, seeds, f"{sum(r['transfer']['match'] for r in sel)}/{len(sel)}", seed_spread(sel, "transfer"),
                 spread(r["transfer"]["colour_cos_target"] for r in sel),
                 f"{sum(r['transfer_swapped']['match'] for r in swapped)}/{len(swapped)}, "
                 f"{seed_spread(swapped, 'transfer_swapped')}, "
                 f"{statistics.mean(r['transfer_swapped']['colour_cos_target'] for r in swapped):.2f}"
                 if swapped else "-",
                 seed_spread(sel, "reconstruction"), f"{statistics.median(step):.3f}" if step else "-",
                 f"{statistics.median(steps_run):.0f} ({min(steps_run)}-{max(steps_run)})" if steps_run else "-"]
        print("| " + " | ".join(cells) + " |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("run", "table"))
    parser.add_argument("--out", required=True, help="the JSON-lines file of results (appended to, read back)")
    parser.add_argument("--fixture", default=svdlike_toy.FIXTURE)
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--cases", type=int, default=6)
    parser.add_argument("--case-seed", type=int, default=70_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--tokens", type=int, default=5, help="N")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--lr", type=float, default=3e-2)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    import comfy.utils
    comfy.utils.PROGRESS_BAR_ENABLED = False
    run(args) if args.what == "run" else table(args)


if __name__ == "__main__":
    main()

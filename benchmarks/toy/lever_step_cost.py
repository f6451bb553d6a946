"""What each lever costs per optimisation step on the SVD-like toy, as ratios to a run without it, measured in turns
inside one process (the load of a shared machine drifts between processes).

    python benchmarks/toy/lever_step_cost.py                 # 3 turns of 40 steps per row
    python benchmarks/toy/lever_step_cost.py --turns 1 --steps 5     # smoke

Prints a markdown table and, last, one JSON line. The copies' encoding happens before the first step and is timed
apart ("set-up s").
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

from reenact_core.appearance import appearance_copies_for  # noqa: E402
from reenact_core.inversion import RunStats, invert_motion  # noqa: E402
from reenact_testkit import svdlike_fidelity, toy_fidelity  # noqa: E402
from reenact_toy import svdlike_toy, toy_clip_vision, toy_codec  # noqa: E402
from svdlike_levers import ROWS as LEVER_ROWS  # noqa: E402  (benchmarks/toy/, this script's own folder)

# svdlike_levers.py's rows, one per lever at its strongest setting.
ROWS = {"none": LEVER_ROWS["method"], "augment_copies 8": LEVER_ROWS["augment_1.0"],
        "debiased_loss_weight 1": LEVER_ROWS["debiased_1"],
        "frame_difference_loss_weight 1": LEVER_ROWS["frame_diff_1"],
        "appearance_slot": LEVER_ROWS["slot"]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    import comfy.utils
    comfy.utils.PROGRESS_BAR_ENABLED = False
    patcher, clip = svdlike_toy.load_svdlike_toy(), toy_clip_vision.load()
    case = svdlike_fidelity.make_cases(1, 70_000, svdlike_fidelity.CASE_KINDS)[0]
    ref = case.reference.latents
    image = svdlike_fidelity.reference_image(clip, case)
    times = {name: [] for name in ROWS}
    setup = {name: [] for name in ROWS}
    for _ in range(args.turns):
        for name, levers in ROWS.items():
            settings = replace(toy_fidelity.DEFAULT_SETTINGS, steps=args.steps, seed=0, **levers)
            started = time.perf_counter()
            copies = appearance_copies_for(toy_codec.make_toy_vae(), toy_codec.latents_to_pixels(ref), settings)
            setup[name].append(time.perf_counter() - started)
            stats = RunStats()
            invert_motion(patcher, ref, ref[:1], svdlike_fidelity.initial_tokens(clip, case, 5, 0),
                          settings=settings, stats=stats, appearance_copies=copies, reference_image=image)
            times[name].append(statistics.median(stats.step_seconds))
    base = statistics.median(times["none"])
    print("| lever | s/step (median of turns) | ratio to none | set-up s (the toy VAE, and the copies made and "
          "encoded) |\n|---|---|---|---|")
    for name in ROWS:
        step = statistics.median(times[name])
        print(f"| {name} | {step:.4f} | {step / base:.2f} | {statistics.median(setup[name]):.3f} |")
    print(json.dumps({"args": vars(args), "s_per_step": times, "setup_s": setup}))


if __name__ == "__main__":
    main()

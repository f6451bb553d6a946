"""The held-out loss and stop-when-learned: fixed draws over the noise range, never a change to the optimisation,
through the node (metadata, checkpoints, resume) and on a toy motion that is learned and one that is not yet."""
import math
import sys
from dataclasses import replace

import pytest
import torch

from reenact_core.held_out import StopRule, held_out_sigmas
from reenact_core.inversion import InversionSettings, RunStats, invert_motion
from reenact_core.motion_embedding import MotionEmbedding
from reenact_testkit import toy_fidelity
from reenact_testkit.comfy_pack import node_class, run_node
from reenact_testkit.node_inputs import optimize_inputs
from reenact_toy import toy_svd


def test_held_out_sigmas_spread_over_the_noise_range():
    sigmas = held_out_sigmas(4, 0.7, 1.6, 0.002, 700.0)
    assert sigmas == sorted(sigmas) and len(set(sigmas)) == 4
    assert sigmas[0] < math.exp(0.7) < sigmas[-1], "below and above the median"
    assert sigmas[0] < 0.5 and sigmas[-1] > 8, f"the tails count too, got {sigmas}"
    assert held_out_sigmas(2, 10.0, 5.0, 0.002, 700.0)[-1] == 700.0, "clamped to the model's range"


@pytest.mark.parametrize("history, stops", [
    ([(0, 1.0), (10, 0.5), (20, 0.5), (30, 0.499), (40, 0.5), (50, 0.5)], True),        # a plateau
    ([(0, 1.0), (10, 0.9), (20, 0.85), (30, 0.82), (40, 0.80), (50, 0.79)], False),     # still falling
    ([(0, 1.0), (10, 0.5), (20, 0.5), (30, 0.5), (40, 0.5)], False),                    # too short to judge
    ([(0, 1.0), (10, 0.5), (20, float("nan")), (30, 0.5), (40, 0.5), (50, 0.5), (60, 0.5)], True),
])
def test_stop_rule(history, stops):
    reason = StopRule(patience=4, min_improvement=0.01).reason(history, every=10)
    assert (reason is not None) == stops, reason
    if stops:
        assert "less than 1% over the last 4 evaluations (40 steps)" in reason and "best 0.499 at step 30" in reason \
            or "best 0.5 at step 10" in reason


def test_evaluating_the_held_out_loss_changes_nothing_in_the_run(small_svd, video):
    """Its noise has a generator of its own and it runs between steps: tokens and losses are bit-identical."""
    runs = {}
    for every in (0, 1):
        settings = InversionSettings(steps=3, checkpointing="off", held_out_every=every, held_out_draws=2)
        stats = RunStats()
        runs[every] = invert_motion(small_svd, video["latents"], video["condition"], video["init"],
                                    settings=settings, stats=stats), stats
    (plain, _), (evaluated, stats) = runs[0], runs[1]
    assert torch.equal(plain[0], evaluated[0]) and plain[1] == evaluated[1]
    assert [step for step, _ in stats.held_out] == [0, 1, 2, 3]
    assert len({loss for _, loss in stats.held_out}) == 4, "the held-out loss moves with the tokens"


def test_the_node_keeps_the_held_out_loss_and_checkpoints_resume_it(tmp_folders, small_svd, small_vae, video):
    inputs = optimize_inputs(model=small_svd, vae=small_vae, reference=video["frames"],
                             init_embedding=MotionEmbedding(video["init"]), steps=4, held_out_every=2,
                             save_every=2, run_name="held")
    full, _ = run_node("OptimizeMotionEmbedding", **inputs)
    assert [step for step, _ in full.metadata["held_out"]] == [0, 2, 4]
    assert full.metadata["held_out_loss"] == full.metadata["held_out"][-1][1]
    assert "stopped_at" not in full.metadata
    resumed, _ = run_node("OptimizeMotionEmbedding", **dict(
        inputs, resume="checkpoints/held_00001/step_000002.safetensors"))
    assert resumed.metadata["held_out"] == full.metadata["held_out"], "the history goes on from the checkpoint"
    assert torch.equal(resumed.tokens, full.tokens)


def test_stopping_needs_a_held_out_loss():
    optimize_module = sys.modules[node_class("OptimizeMotionEmbedding").__module__]  # as ComfyUI loaded the pack
    problem = optimize_module.stop_problem(True, 0)
    assert problem and "expected held_out_every above 0" in problem and "got 0" in problem


# --- on the toy world: a motion that is learned stops early; one still being learned does not -----------------

@pytest.fixture(scope="module")
def toy_case(one_quiet_thread):
    return toy_svd.load_toy_svd(), toy_fidelity.make_cases(1, 60_000)[0]


def toy_run(toy_case, **changes):
    patcher, case = toy_case
    ref = case.reference.latents
    settings = replace(toy_fidelity.DEFAULT_SETTINGS, held_out_every=InversionSettings().held_out_every,
                       stop_when_learned=True, **changes)
    stats = RunStats()
    tokens, losses = invert_motion(patcher, ref, ref[:1], toy_fidelity.init_tokens(ref.shape[0], 1, 0),
                                   settings=settings, stats=stats)
    return tokens, losses, stats


@pytest.mark.full
def test_a_learned_toy_motion_stops_before_steps_and_matches(toy_case):
    patcher, case = toy_case
    tokens, losses, stats = toy_run(toy_case, steps=1000)
    assert stats.stopped_at is not None and stats.stopped_at < 1000, stats.held_out
    assert len(losses) == stats.stopped_at and "held-out loss improved by less than 2%" in stats.stop_reason
    result = toy_fidelity.score(toy_svd.sample_video(patcher, case.target.latents[:1], tokens, 0), case)
    assert result["match"], result


@pytest.mark.full
def test_a_toy_motion_still_being_learned_does_not_stop(toy_case):
    """A learning rate 30x lower: the held-out loss still falls by more than 2% per window at the end."""
    _, losses, stats = toy_run(toy_case, steps=200, learning_rate=1e-3)
    assert stats.stopped_at is None and len(losses) == 200
    recent = [loss for _, loss in stats.held_out[-4:]]
    assert recent[-1] < 0.98 * recent[0], f"precondition: still falling, got {stats.held_out}"

"""The compiled inversion step (compile on) on the small SVD UNet: it engages, it computes what eager computes,
and it leaves the MODEL as it was, after a run and after a Cancel.

The MODEL is a clone of the small SVD with ComfyUI's own `optimized_attention_override` set to PyTorch's SDPA
attention (what ComfyUI runs on NVIDIA GPUs). ComfyUI's CPU default, sub-quadratic attention, asks psutil for
free memory inside every attention call, which dynamo cannot trace: a graph break per call (the numbers stay
eager's; the run's CompileReport counts the breaks and names the reason). Not tested here: compiling those
pieces would add minutes of CPU compile to the suite.

Every test here uses one shape (conftest's video: 4 frames, 8x8 latents, 2 tokens of 64, fp32), so the graphs compiled by the
first test are reused by the rest: about four minutes of compiling on two cores with a cold inductor cache,
about a minute with a warm one.
No test times anything.
"""
from dataclasses import replace

import pytest
import torch

import comfy.ldm.modules.attention as comfy_attention
from reenact_core.inversion import DenoisingObjective, InversionSettings, RunHooks, RunStats, invert_motion
from reenact_core.memory_mode import RunPlan
from reenact_core.motion_preview import PreviewTarget, sample_preview
from reenact_core.run_changes import changed_for_run
from reenact_testkit.cancel import cancel_node_run_at_step_two
from reenact_testkit.model_state import attachments, fixed_denoised_output

pytestmark = pytest.mark.full

FRAMES = 4


def pytorch_attention(func, *args, **kwargs):
    return comfy_attention.attention_pytorch(*args, **kwargs)


@pytest.fixture(scope="module")
def sdpa_svd(small_svd):
    patcher = small_svd.clone()
    patcher.model_options.setdefault("transformer_options", {})["optimized_attention_override"] = pytorch_attention
    return patcher


def loss_and_gradient(model, video, checkpointing, compile):
    """One step's loss and the token gradient, through the optimiser's own objective and layer wrappers."""
    objective = DenoisingObjective(model, video["latents"], video["condition"], InversionSettings())
    noise = torch.randn(objective.x0.shape, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode(False), torch.enable_grad():
        tokens = video["init"].clone().requires_grad_(True)
        plan = RunPlan(checkpointing, torch.float32, free_other_models=False, compile=compile)
        with changed_for_run(objective.model, plan) as report:
            loss = objective.loss(objective.model_conds(tokens), 1.7, noise)
            loss.backward()
    return loss.item(), tokens.grad, report


@pytest.mark.parametrize("checkpointing", ["blocks", "budget"])
def test_compiled_step_gives_eager_loss_and_gradient(sdpa_svd, video, checkpointing):
    eager_loss, eager_grad, _ = loss_and_gradient(sdpa_svd, video, "blocks", compile=False)
    loss, grad, report = loss_and_gradient(sdpa_svd, video, checkpointing, compile=True)
    assert loss == pytest.approx(eager_loss, rel=1e-5)
    assert torch.allclose(grad, eager_grad, rtol=1e-3, atol=1e-4 * eager_grad.abs().max().item())
    assert report.graph_breaks == 0, report.break_reasons
    again_loss, again_grad, again = loss_and_gradient(sdpa_svd, video, checkpointing, compile=True)
    assert again.graphs == 0 and again.graph_breaks == 0, "the second run compiles nothing"
    assert again_loss == loss and torch.equal(again_grad, grad)


def test_compiled_run_reports_graphs_and_leaves_the_model_as_it_was(sdpa_svd, video):
    before_output, before = fixed_denoised_output(sdpa_svd, video), attachments(sdpa_svd)
    runs = {}
    for compile in ("off", "on"):
        stats = RunStats()
        settings = InversionSettings(steps=3, seed=1, checkpointing="blocks", compile=compile)
        with torch.inference_mode():
            runs[compile] = invert_motion(sdpa_svd, video["latents"], video["condition"], video["init"],
                                          settings=settings, stats=stats)
        assert len(stats.step_seconds) == 3
    assert stats.compile is not None and stats.compile.graph_breaks == 0
    assert "graphs compiled, 0 graph breaks" in stats.describe()
    (eager_tokens, eager_losses), (tokens, losses) = runs["off"], runs["on"]
    assert losses == pytest.approx(eager_losses, rel=1e-5)
    assert torch.allclose(tokens, eager_tokens, atol=1e-5)
    assert attachments(sdpa_svd) == before
    assert torch.equal(fixed_denoised_output(sdpa_svd, video), before_output)


def test_previews_in_a_compiled_run_compile_nothing_more_and_change_nothing(sdpa_svd, small_vae, video):
    """A run pauses for each preview (the compiled wrappers come off, the preview samples the plain MODEL, the
    wrappers go back on): no graph is compiled for the pauses, and the tokens are the unpaused run's, bit for bit."""
    settings = InversionSettings(steps=4, seed=1, checkpointing="blocks", compile="on")
    plain_stats, previewed_stats, previews = RunStats(), RunStats(), []

    def on_preview(step, tokens):
        previews.append((step, sample_preview(sdpa_svd, small_vae, target, tokens).shape))

    with torch.inference_mode():
        target = PreviewTarget(small_vae.encode(video["frames"][:1]), FRAMES, fps=6, motion_bucket_id=127,
                               augmentation_level=0.0, seed=0)
        plain = invert_motion(sdpa_svd, video["latents"], video["condition"], video["init"], settings=settings,
                              stats=plain_stats)
        previewed = invert_motion(sdpa_svd, video["latents"], video["condition"], video["init"],
                                  settings=replace(settings, preview_every=2), stats=previewed_stats,
                                  hooks=RunHooks(on_preview=on_preview))
    assert previews == [(2, (FRAMES, 64, 64, 3)), (4, (FRAMES, 64, 64, 3))]
    assert previewed_stats.compile.graphs == 0 and previewed_stats.compile.graph_breaks == 0
    assert len(previewed_stats.preview_seconds) == 2
    assert torch.equal(previewed[0], plain[0]) and previewed[1] == plain[1]


def test_cancel_during_a_compiled_run_leaves_the_model_as_it_was(sdpa_svd, small_vae, video):
    cancel_node_run_at_step_two(sdpa_svd, small_vae, video, gradient_checkpointing="blocks", compile="on")


def test_low_vram_offload_learns_what_layers_learns(sdpa_svd, video):
    """low_vram keeps layer inputs and saved tensors in CPU memory; the arithmetic is the same as 'layers'."""
    before_output, before = fixed_denoised_output(sdpa_svd, video), attachments(sdpa_svd)
    results = {}
    for memory_mode in ("balanced", "low_vram"):
        settings = InversionSettings(steps=3, seed=1, checkpointing="layers", precision="bf16",
                                     memory_mode=memory_mode)
        with torch.inference_mode():
            results[memory_mode] = invert_motion(sdpa_svd, video["latents"], video["condition"], video["init"],
                                                 settings=settings)
    assert results["low_vram"][1] == results["balanced"][1]
    assert torch.equal(results["low_vram"][0], results["balanced"][0])
    assert attachments(sdpa_svd) == before
    assert torch.equal(fixed_denoised_output(sdpa_svd, video), before_output)



def test_benchmark_reports_graphs_breaks_compile_time_and_time_split():
    """inversion_step.py --compile --profile on the small UNet at this file's shape (the inductor cache is warm
    by now): the JSON says what compiling did and where the time went. Nothing is timed against a target."""
    import json
    import os
    import subprocess
    import sys

    from reenact_cli.locate import PACK_ROOT
    out = subprocess.run([sys.executable, os.path.join(PACK_ROOT, "benchmarks", "inversion_step.py"), "--device", "cpu",
                          "--model", "small", "--frames", str(FRAMES), "--height", "64", "--width", "64", "--tokens",
                          "2", "--steps", "2", "--warmup", "0", "--dtype", "fp32", "--attention", "pytorch",
                          "--checkpointing", "blocks", "--compile", "--profile", "1", "--useful-tflop", "0.002"],
                         capture_output=True, text=True, timeout=1200)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["compile"] is True and result["compiled_graphs"] >= 1 and result["graph_breaks"] == 0
    assert result["compile_s"] > 0 and result["useful_tflop_per_step"] == 0.002
    split = result["time_split"]
    assert set(split) == {"attention", "matmul", "conv", "norm", "elementwise", "other", "total_ms"}
    assert abs(sum(v for k, v in split.items() if k != "total_ms") - 1) < 0.01 and split["total_ms"] > 0

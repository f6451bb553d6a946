"""Save every K steps, keep the newest few, resume bit for bit; overflow rescue. Real node, real files.

The interrupted run is stopped with ComfyUI's own interrupt flag, as the Cancel button does.
"""
import os
from dataclasses import replace

import pytest
import safetensors
import torch

import comfy.model_management as mm
from reenact_core.inversion import InversionSettings
from reenact_core.inversion_job import RunFiles, load_resume
from reenact_core.motion_embedding import MotionEmbedding
from reenact_core.run_checkpoints import load_checkpoint
from reenact_testkit.cancel import cancel_at_check
from reenact_testkit.comfy_pack import run_node
from reenact_testkit.node_inputs import optimize_inputs

FRAMES, STEPS = 4, 4


def inputs(model, vae, frames, init, **overrides):
    return optimize_inputs(**dict(dict(model=model, vae=vae, reference=frames, init_embedding=init, steps=STEPS,
                                       augmentation_level=0.02, run_name="wave"), **overrides))


def cancel_after(step_count, **node_inputs):
    """Run the node and press Cancel once `step_count` steps have finished."""
    with cancel_at_check(step_count), pytest.raises(mm.InterruptProcessingException):
        run_node("OptimizeMotionEmbedding", **node_inputs)


@pytest.fixture(scope="module")
def video():
    g = torch.Generator().manual_seed(5)
    return torch.rand(FRAMES, 64, 64, 3, generator=g), MotionEmbedding(torch.randn(FRAMES + 1, 2, 64, generator=g))


def test_interrupt_then_resume_is_bit_exact(tmp_folders, small_svd, small_vae, video):
    frames, init = video
    full, _ = run_node("OptimizeMotionEmbedding", **inputs(small_svd, small_vae, frames, init, save_every=1,
                                                           keep_checkpoints=2))
    run_dir = tmp_folders / "embeddings" / "checkpoints" / "wave_00001"
    assert sorted(os.listdir(run_dir)) == ["step_000003.safetensors", "step_000004.safetensors"], "keep 2"

    cancel_after(3, **inputs(small_svd, small_vae, frames, init, save_every=2, keep_checkpoints=0))
    assert os.listdir(tmp_folders / "embeddings" / "checkpoints" / "wave_00002") == ["step_000002.safetensors"]

    # The seed widget may have moved on (control_after_generate); the checkpoint's RNG state and seed win.
    resumed, curve = run_node("OptimizeMotionEmbedding", **inputs(
        small_svd, small_vae, frames, init, seed=12345, resume="checkpoints/wave_00002/step_000002.safetensors"))
    assert torch.equal(resumed.tokens, full.tokens), \
        f"max difference {(resumed.tokens - full.tokens).abs().max().item():g}"
    assert resumed.metadata["final_loss"] == full.metadata["final_loss"] and resumed.metadata["seed"] == 0
    assert resumed.metadata["steps"] == STEPS
    assert (tmp_folders / "embeddings" / "checkpoints" / "wave_00002" / "step_000002.safetensors").exists()


def test_checkpoint_holds_state_not_pickles(tmp_folders, small_svd, small_vae, video):
    frames, init = video
    run_node("OptimizeMotionEmbedding", **inputs(small_svd, small_vae, frames, init, steps=2, save_every=2))
    path = tmp_folders / "embeddings" / "checkpoints" / "wave_00001" / "step_000002.safetensors"
    with safetensors.safe_open(str(path), framework="pt") as f:
        keys, meta = set(f.keys()), f.metadata()
        rng = f.get_tensor("rng_state")
    assert {"motion_tokens", "adamw.exp_avg", "adamw.exp_avg_sq", "adamw.step", "rng_state", "losses"} <= keys
    assert rng.dtype == torch.uint8 and rng.numel() > 100
    assert meta["format"] == "reenact-anything/run-checkpoint" and meta["step"] == "2"
    assert '"learning_rate": 0.01' in meta["settings"] and meta["model"].startswith('"SVD_img2vid:')
    # An intermediate checkpoint is usable as a motion embedding too.
    loaded, _ = run_node("LoadMotionEmbedding", embedding_name="checkpoints/wave_00001/step_000002.safetensors")
    assert loaded.tokens.shape == init.tokens.shape


def test_a_new_run_never_touches_an_old_runs_files(tmp_folders, small_svd, small_vae, video):
    frames, init = video
    old = tmp_folders / "embeddings" / "checkpoints" / "wave_00001"
    old.mkdir(parents=True)
    (old / "step_000001.safetensors").write_bytes(b"the user's own file")
    run_node("OptimizeMotionEmbedding", **inputs(small_svd, small_vae, frames, init, steps=1, save_every=1,
                                                 keep_checkpoints=1))
    assert (old / "step_000001.safetensors").read_bytes() == b"the user's own file"
    assert os.listdir(old.parent / "wave_00002") == ["step_000001.safetensors"]


@pytest.fixture()
def saved_checkpoint(tmp_folders, small_svd, small_vae, video):
    frames, init = video
    run_node("OptimizeMotionEmbedding", **inputs(small_svd, small_vae, frames, init, steps=1, save_every=1))
    return "checkpoints/wave_00001/step_000001.safetensors"


@pytest.mark.parametrize("change,message", [
    (dict(fps=7), r"differs in: fps \(checkpoint 6, now 7\)"),
    (dict(sigma_log_mean=1.0, motion_bucket_id=100), r"sigma_log_mean \(checkpoint 0.7, now 1.0\); "
                                                     r"motion_bucket_id \(checkpoint 127, now 100\)"),
    (dict(reference="other"), r"differs in: reference frames \(checkpoint [0-9a-f]{12}, now [0-9a-f]{12}\)"),
    (dict(steps=1), r"expected steps above the checkpoint's step 1 to resume .*, got 1"),
])
def test_resume_names_what_differs(saved_checkpoint, small_svd, small_vae, video, change, message):
    frames, init = video
    if change.get("reference") == "other":
        change = dict(reference=frames.flip(0))
    with pytest.raises(ValueError, match=message):
        run_node("OptimizeMotionEmbedding", **inputs(small_svd, small_vae, frames, init, resume=saved_checkpoint,
                                                     **change))


def test_resume_refuses_another_model_and_shape(saved_checkpoint, small_vae, video):
    from reenact_testkit.small_models import make_small_svd
    frames, init = video
    with torch.inference_mode():
        other = make_small_svd(seed=9)
    wider = MotionEmbedding(torch.randn(FRAMES + 1, 3, 64))
    with pytest.raises(ValueError, match=r"model \(checkpoint SVD_img2vid:\w+, now SVD_img2vid:\w+\); "
                                         r"embedding shape \(checkpoint \(5, 2, 64\), now \(5, 3, 64\)\)"):
        run_node("OptimizeMotionEmbedding", **inputs(other, small_vae, frames, wider, resume=saved_checkpoint))


def test_resume_refuses_missing_and_truncated(saved_checkpoint, tmp_folders, small_svd, small_vae, video):
    frames, init = video
    with pytest.raises(ValueError, match="expected a run checkpoint under .*got 'checkpoints/gone.safetensors'"):
        run_node("OptimizeMotionEmbedding", **inputs(small_svd, small_vae, frames, init,
                                                     resume="checkpoints/gone.safetensors"))
    path = tmp_folders / "embeddings" / saved_checkpoint
    data = path.read_bytes()
    cut = path.parent / "step_000009.safetensors"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="step_000009.safetensors is truncated or corrupt"):
        run_node("OptimizeMotionEmbedding", **inputs(small_svd, small_vae, frames, init, steps=20,
                                                     resume="checkpoints/wave_00001/step_000009.safetensors"))


def test_resume_combo_lists_checkpoints(saved_checkpoint, tmp_folders):
    """Listed: the checkpoints a run wrote; not listed: the empty name a run killed mid-save reserved (SIGKILL skips
    its cleanup), which no resume could read."""
    from reenact_testkit.comfy_pack import node_class
    killed = tmp_folders / "embeddings" / "checkpoints" / "wave_00001" / "step_000002.safetensors"
    killed.touch()
    spec = node_class("OptimizeMotionEmbedding").GET_NODE_INFO_V1()["input"]["optional"]["resume"]
    options = spec[1]["options"] if spec[0] == "COMBO" else spec[0]
    assert options[0] == "none" and saved_checkpoint in options
    assert "checkpoints/wave_00001/step_000002.safetensors" not in options


def test_non_finite_loss_keeps_the_last_good_embedding(tmp_folders, small_svd, small_vae, video):
    """A step size of 1e30 blows the tokens up after step 1: step 2's loss is not finite.

    The error names the setting and the rescued file; that file holds exactly the tokens of a clean 1-step run.
    """
    frames, init = video
    bad = inputs(small_svd, small_vae, frames, init, learning_rate=1e30, steps=5)
    with pytest.raises(ValueError, match=r"expected a finite loss, got a non-finite one at step 2 .* lower the "
                                         r"learning_rate \(now 1e\+30\)\. The last good embedding \(after 1 of 5 "
                                         r"steps\) is saved as motion_embeddings/rescued/wave_00001\.safetensors"):
        run_node("OptimizeMotionEmbedding", **bad)
    rescued, _ = run_node("LoadMotionEmbedding", embedding_name="rescued/wave_00001.safetensors")
    one_step, _ = run_node("OptimizeMotionEmbedding", **dict(bad, steps=1))
    assert torch.equal(rescued.tokens, one_step.tokens)
    assert rescued.metadata["steps"] == 1 and rescued.metadata["rescued"] == "non-finite loss"


def changed(value):
    """Another valid value of a setting's type (a text setting's: another of its options)."""
    if isinstance(value, str):
        from reenact_core.appearance import AUGMENT_CHANGES
        return next(option for option in AUGMENT_CHANGES if option != value)
    return (not value) if isinstance(value, bool) else value + 1 if isinstance(value, int) else value + 0.25


@pytest.mark.parametrize("name", InversionSettings.same_on_resume())
def test_resume_refuses_every_changed_problem_setting(saved_checkpoint, tmp_folders, name):
    """Generated from the settings object: each field marked as the problem's, changed, is named and refused."""
    settings = replace(InversionSettings(), seed=0)
    files = RunFiles(str(tmp_folders / "embeddings"), resume=saved_checkpoint)
    _, header = load_checkpoint(str(tmp_folders / "embeddings" / saved_checkpoint))
    saved = replace(settings, **{k: header["settings"][k] for k in InversionSettings.same_on_resume()}, steps=20)
    other = replace(saved, **{name: changed(getattr(saved, name))})
    with pytest.raises(ValueError, match=rf"differs in: {name} \(checkpoint {getattr(saved, name)}, now "):
        load_resume(files, other, header["model"], header["reference"], tuple(header_shape(header)))
    load_resume(files, saved, header["model"], header["reference"], tuple(header_shape(header)))  # unchanged: fine


def header_shape(header):
    return header["frames"] + 1, header["tokens"], header["dim"]

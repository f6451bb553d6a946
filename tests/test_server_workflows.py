"""The bundled workflows, end to end through a real ComfyUI server's HTTP API and websocket.

The checkpoint is full size with random weights in the released SVD key layout, so ComfyUI's own
ImageOnlyCheckpointLoader, detection and key conversion run for real; sizes are patched tiny so a CPU can run it.
"""
import json
import os
import shutil

import numpy as np
import pytest
import torch

from comfyui_location import PACK_ROOT
from reenact_cli.workflow_api import patched, ui_to_api
from reenact_core.embedding_file import load_embedding, save_embedding
from reenact_core.motion_embedding import MotionEmbedding
from reenact_testkit.media import read_video_frames
from reenact_testkit.server_env import REFERENCE_VIDEO, TARGET_IMAGE

WORKFLOWS = os.path.join(PACK_ROOT, "workflows")
FRAMES, SIZE = 3, 64
TINY = {"LoadMotionReference": {"frame_count": FRAMES, "width": SIZE, "height": SIZE},
        "OptimizeMotionEmbedding": {"steps": 2},
        "SVD_img2vid_Conditioning": {"width": SIZE, "height": SIZE, "video_frames": FRAMES},
        "KSampler": {"steps": 2}}


def api_prompt(client, name, **changes):
    with open(os.path.join(WORKFLOWS, name)) as f:
        prompt = ui_to_api(json.load(f), client.object_info())
    wanted = {k: v for k, v in TINY.items() if any(n["class_type"] == k for n in prompt.values())}
    for class_type, values in changes.items():
        wanted[class_type] = {**wanted.get(class_type, {}), **values}
    return patched(prompt, wanted)


def run_ok(client, prompt):
    run = client.run(prompt, timeout=1200)
    assert run.status == "success", f"run ended as {run.status}: {run.error}"
    history = client.history(run.prompt_id)
    assert history["status"]["status_str"] == "success"
    assert not [m for m in history["status"]["messages"] if m[0] == "execution_error"]
    return run, history


def saved_video(base, history):
    files = [f for out in history["outputs"].values() for f in out.get("images", []) if f["filename"].endswith(".mp4")]
    assert len(files) == 1, history["outputs"]
    return os.path.join(base, "output", files[0]["subfolder"], files[0]["filename"])


def saved_embedding_path(base, history):
    texts = [t for out in history["outputs"].values() for t in out.get("text", []) if t.startswith("saved ")]
    assert len(texts) == 1, history["outputs"]
    return os.path.join(base, "models", "motion_embeddings", texts[0][len("saved "):])


def assert_video(path, frames=FRAMES, size=SIZE):
    video = read_video_frames(path)
    assert video.shape == (frames, size, size, 3), video.shape
    return video


def test_bundled_workflows_are_listed_as_templates(comfy_server):
    server, client = comfy_server
    templates = client.get_json("/workflow_templates")
    assert sorted(templates.get("reenact-anything", [])) == sorted(n[:-5] for n in os.listdir(WORKFLOWS))


def test_invert_workflow_saves_an_embedding_with_metadata(comfy_server):
    server, client = comfy_server
    run, history = run_ok(client, api_prompt(client, "reenact_invert_motion.json",
                                             SaveMotionEmbedding={"filename_prefix": "e2e/invert"}))
    embedding = load_embedding(saved_embedding_path(server.base_directory, history))
    assert embedding.tokens.shape == (FRAMES + 1, 5, 1024)
    meta = embedding.metadata
    assert (meta["steps"], meta["width"], meta["height"]) == (2, SIZE, SIZE)
    assert meta["source_video"] == REFERENCE_VIDEO
    assert np.isfinite(meta["final_loss"])
    losses = [p for data in run.of_type("reenact_anything.loss") for p in data["points"]]
    assert [p[0] for p in losses] == [1, 2], "the live loss curve gets one point per step"


def test_transfer_workflow_writes_a_video(comfy_server):
    server, client = comfy_server
    folder = os.path.join(server.base_directory, "models", "motion_embeddings")
    tokens = torch.randn(FRAMES + 1, 5, 1024, generator=torch.Generator().manual_seed(3))
    path = save_embedding(MotionEmbedding(tokens, {"fps": 6, "motion_bucket_id": 127}), folder, "e2e/shared")
    name = os.path.relpath(path, folder).replace(os.sep, "/")
    run, history = run_ok(client, api_prompt(client, "reenact_transfer_motion.json",
                                             LoadMotionEmbedding={"embedding_name": name},
                                             SaveVideo={"filename_prefix": "video/e2e_transfer"}))
    assert_video(saved_video(server.base_directory, history))


def test_invert_and_transfer_workflow(comfy_server):
    server, client = comfy_server
    run, history = run_ok(client, api_prompt(client, "reenact_invert_and_transfer.json",
                                             SaveMotionEmbedding={"filename_prefix": "e2e/both"},
                                             SaveVideo={"filename_prefix": "video/e2e_both"}))
    video = assert_video(saved_video(server.base_directory, history))
    assert video.std() > 0, "a random-weight model still gives a non-constant video"
    assert load_embedding(saved_embedding_path(server.base_directory, history)).metadata["steps"] == 2


def test_interrupt_stops_within_a_step_and_leaves_the_model_as_it_was(comfy_server):
    server, client = comfy_server
    # The other checkpoint name gives a MODEL that no earlier test touched: "before" runs on a fresh load.
    fresh = {"ImageOnlyCheckpointLoader": {"ckpt_name": "svd.safetensors"}}
    transfer = dict(fresh, SaveVideo={"filename_prefix": "video/e2e_before"})
    folder = os.path.join(server.base_directory, "models", "motion_embeddings")
    tokens = torch.randn(FRAMES + 1, 5, 1024, generator=torch.Generator().manual_seed(4))
    path = save_embedding(MotionEmbedding(tokens, {"fps": 6, "motion_bucket_id": 127}), folder, "e2e/cancel")
    transfer["LoadMotionEmbedding"] = {"embedding_name": os.path.relpath(path, folder).replace(os.sep, "/")}
    _, before = run_ok(client, api_prompt(client, "reenact_transfer_motion.json", **transfer))

    steps_at_interrupt = []

    def interrupt_after_first_step(kind, data):
        if kind == "reenact_anything.loss" and data["points"] and not steps_at_interrupt:
            steps_at_interrupt.append(data["points"][-1][0])
            client.interrupt()

    cancelled = client.run(api_prompt(client, "reenact_invert_motion.json",
                                      OptimizeMotionEmbedding={"steps": 40, "seed": 5}, **fresh),
                           on_event=interrupt_after_first_step, timeout=1200)
    assert cancelled.status == "interrupted", cancelled.error
    steps_done = max(p[0] for d in cancelled.of_type("reenact_anything.loss") for p in d["points"])
    assert steps_done - steps_at_interrupt[0] <= 2, f"interrupt at step {steps_at_interrupt[0]}, ran to {steps_done}"

    # Same pixels under a new file name: LoadImage re-runs (and everything after it), the cached MODEL is reused.
    copy = "reenact_target_copy.png"
    shutil.copy(os.path.join(server.base_directory, "input", TARGET_IMAGE),
                os.path.join(server.base_directory, "input", copy))
    transfer.update(LoadImage={"image": copy}, SaveVideo={"filename_prefix": "video/e2e_after"})
    _, after = run_ok(client, api_prompt(client, "reenact_transfer_motion.json", **transfer))
    video_before = assert_video(saved_video(server.base_directory, before))
    video_after = assert_video(saved_video(server.base_directory, after))
    assert np.array_equal(video_before, video_after), "the MODEL changed after a cancelled optimisation"
    assert server.alive()

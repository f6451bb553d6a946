"""The bundled workflows, end to end through a real ComfyUI server's HTTP API and websocket.

The checkpoint is full size with random weights in the released SVD key layout, so ComfyUI's own
ImageOnlyCheckpointLoader, detection and key conversion run for real; sizes are patched tiny so a CPU can run it.
"""
import json
import os
import shutil

import numpy as np
import torch

from comfyui_location import PACK_ROOT
from reenact_cli.workflow_api import patched, ui_to_api
from reenact_core.embedding_file import load_embedding, save_embedding
from reenact_core.events import LOSS_EVENT
from reenact_core.motion_embedding import MotionEmbedding
from reenact_testkit.media import decode_all_frames
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
    video = decode_all_frames(path)
    assert video.shape == (frames, size, size, 3), video.shape
    return video


def server_embedding(server, seed, prefix) -> str:
    """A random SVD-sized embedding saved into the server's models/motion_embeddings; its combo name."""
    folder = os.path.join(server.base_directory, "models", "motion_embeddings")
    tokens = torch.randn(FRAMES + 1, 5, 1024, generator=torch.Generator().manual_seed(seed))
    path = save_embedding(MotionEmbedding(tokens, {"fps": 6, "motion_bucket_id": 127}), folder, prefix)
    return os.path.relpath(path, folder).replace(os.sep, "/")


def test_bundled_workflows_are_listed_as_templates(comfy_server):
    server, client = comfy_server
    templates = client.get_json("/workflow_templates")
    assert sorted(templates.get("reenact-anything", [])) == sorted(n[:-5] for n in os.listdir(WORKFLOWS))


def test_bundled_workflows_match_the_node_schemas(comfy_server):
    """A schema change without `python scripts/build_workflows.py` would leave widget values shifted."""
    from reenact_cli.workflow_api import (FRONTEND_ONLY, extra_widget_values, is_widget, ordered_inputs,
                                          trailing_widget_values)
    server, client = comfy_server
    info = client.object_info()
    for name in os.listdir(WORKFLOWS):
        with open(os.path.join(WORKFLOWS, name)) as f:
            workflow = json.load(f)
        for node in workflow["nodes"]:
            if node["type"] in FRONTEND_ONLY:
                continue
            widgets = [(n, s) for n, s in ordered_inputs(info[node["type"]]) if is_widget(s)]
            expected = sum(1 + extra_widget_values(s) + trailing_widget_values(s) for _, s in widgets)
            assert len(node["widgets_values"]) == expected, f"{name}: {node['type']} widget values are stale"


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
    losses = [p for data in run.of_type(LOSS_EVENT) for p in data["points"]]
    assert [p[0] for p in losses] == [1, 2], "the live loss curve gets one point per step"


def test_transfer_workflow_writes_a_video(comfy_server):
    server, client = comfy_server
    name = server_embedding(server, 3, "e2e/shared")
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


def with_saved_latent(prompt, prefix):
    """The transfer prompt plus ComfyUI's SaveLatent on the KSampler output: latents compare exactly, unlike a
    lossy mp4."""
    sampler_id = next(k for k, v in prompt.items() if v["class_type"] == "KSampler")
    prompt = dict(prompt)
    prompt["9000"] = {"class_type": "SaveLatent", "inputs": {"samples": [sampler_id, 0], "filename_prefix": prefix}}
    return prompt


def saved_latent(base, history):
    from safetensors.torch import load_file
    files = [f for out in history["outputs"].values() for f in out.get("latents", [])]
    assert len(files) == 1, history["outputs"]
    return load_file(os.path.join(base, "output", files[0]["subfolder"], files[0]["filename"]))["latent_tensor"]


def test_interrupt_stops_within_a_step_and_leaves_the_model_as_it_was(comfy_server):
    server, client = comfy_server
    base = server.base_directory
    name = server_embedding(server, 4, "e2e/cancel")
    # The other checkpoint name gives a MODEL that no earlier test touched: "before" runs on a fresh load.
    fresh = {"ImageOnlyCheckpointLoader": {"ckpt_name": "svd.safetensors"}}
    transfer = dict(fresh, LoadMotionEmbedding={"embedding_name": name})
    _, before = run_ok(client, with_saved_latent(api_prompt(client, "reenact_transfer_motion.json", **transfer),
                                                 "latents/before"))

    steps_at_interrupt = []

    def interrupt_after_first_step(kind, data):
        if kind == LOSS_EVENT and data["points"] and not steps_at_interrupt:
            steps_at_interrupt.append(data["points"][-1][0])
            client.interrupt()

    cancelled = client.run(api_prompt(client, "reenact_invert_motion.json",
                                      OptimizeMotionEmbedding={"steps": 40, "seed": 5}, **fresh),
                           on_event=interrupt_after_first_step, timeout=1200)
    assert cancelled.status == "interrupted", cancelled.error
    steps_done = max(p[0] for d in cancelled.of_type(LOSS_EVENT) for p in d["points"])
    assert steps_done - steps_at_interrupt[0] <= 2, f"interrupt at step {steps_at_interrupt[0]}, ran to {steps_done}"

    # Same pixels under a new file name: LoadImage re-runs (and everything after it), the cached MODEL is reused.
    copy = "reenact_target_copy.png"
    shutil.copy(os.path.join(base, "input", TARGET_IMAGE), os.path.join(base, "input", copy))
    transfer["LoadImage"] = {"image": copy}
    _, after = run_ok(client, with_saved_latent(api_prompt(client, "reenact_transfer_motion.json", **transfer),
                                                "latents/after"))
    latent_before, latent_after = saved_latent(base, before), saved_latent(base, after)
    # CPU kernels may round differently with memory alignment; a changed model moves latents by O(1).
    difference = (latent_before - latent_after).abs().max().item()
    assert difference < 1e-3 * latent_before.abs().max().item(), f"latents moved by {difference}"
    assert server.alive()

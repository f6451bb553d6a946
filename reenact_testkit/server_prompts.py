"""Prompts for a real ComfyUI server (reenact_testkit/server_env.py prepares its base directory): the bundled
workflows turned into API prompts cut down to a CPU-sized run, a run that must succeed, and where a finished
prompt's outputs landed. Shared by the server tests (tests/test_server_workflows.py, tests/test_server_queue.py).
"""
import json
import os

import torch

from reenact_cli.locate import PACK_ROOT
from reenact_cli.workflow_api import patched, ui_to_api
from reenact_core.embedding_file import save_embedding
from reenact_core.motion_embedding import MotionEmbedding

WORKFLOWS = os.path.join(PACK_ROOT, "example_workflows")  # the folder name ComfyUI's docs give for templates
FRAMES, SIZE = 3, 64  # what TINY cuts the bundled workflows down to: 3 frames of 64x64
TINY = {"LoadMotionReference": {"frame_count": FRAMES, "width": SIZE, "height": SIZE},
        "OptimizeMotionEmbedding": {"steps": 2},
        "SVD_img2vid_Conditioning": {"width": SIZE, "height": SIZE, "video_frames": FRAMES},
        "KSampler": {"steps": 2}}


def api_prompt(client, name, **changes):
    """A bundled workflow (example_workflows/<name>) as an API prompt for the client's server, cut down by TINY;
    `changes` are more widget values by class type, e.g. KSampler={"seed": 1}."""
    with open(os.path.join(WORKFLOWS, name)) as f:
        prompt = ui_to_api(json.load(f), client.object_info())
    wanted = {k: v for k, v in TINY.items() if any(n["class_type"] == k for n in prompt.values())}
    for class_type, values in changes.items():
        wanted[class_type] = {**wanted.get(class_type, {}), **values}
    return patched(prompt, wanted)


def run_ok(client, prompt):
    """Queue the prompt, wait for it, assert it succeeded with no execution error; (run, history)."""
    run = client.run(prompt, timeout=1200)
    assert run.status == "success", f"run ended as {run.status}: {run.error}"
    history = client.history(run.prompt_id)
    assert history["status"]["status_str"] == "success"
    assert not [m for m in history["status"]["messages"] if m[0] == "execution_error"]
    return run, history


def saved_video(base, history):
    """The path of the one mp4 a finished prompt saved under the server's base directory."""
    files = [f for out in history["outputs"].values() for f in out.get("images", []) if f["filename"].endswith(".mp4")]
    assert len(files) == 1, history["outputs"]
    return os.path.join(base, "output", files[0]["subfolder"], files[0]["filename"])


def saved_embedding_path(base, history):
    """The path of the one embedding file a finished prompt saved (its "saved <name>" text output)."""
    texts = [t for out in history["outputs"].values() for t in out.get("text", []) if t.startswith("saved ")]
    assert len(texts) == 1, history["outputs"]
    return os.path.join(base, "models", "motion_embeddings", texts[0][len("saved "):])


def server_embedding(server, seed, prefix) -> str:
    """A random SVD-sized embedding saved into the server's models/motion_embeddings; its combo name."""
    folder = os.path.join(server.base_directory, "models", "motion_embeddings")
    tokens = torch.randn(FRAMES + 1, 5, 1024, generator=torch.Generator().manual_seed(seed))
    path = save_embedding(MotionEmbedding(tokens, {"fps": 6, "motion_bucket_id": 127}), folder, prefix)
    return os.path.relpath(path, folder).replace(os.sep, "/")


def with_saved_latent(prompt, prefix):
    """The transfer prompt plus ComfyUI's SaveLatent on the KSampler output: latents compare exactly, unlike a
    lossy mp4."""
    sampler_id = next(k for k, v in prompt.items() if v["class_type"] == "KSampler")
    prompt = dict(prompt)
    prompt["9000"] = {"class_type": "SaveLatent", "inputs": {"samples": [sampler_id, 0], "filename_prefix": prefix}}
    return prompt


def saved_latent(base, history):
    """The latent tensor of the one latent file a finished prompt saved (with_saved_latent's SaveLatent)."""
    from safetensors.torch import load_file
    files = [f for out in history["outputs"].values() for f in out.get("latents", [])]
    assert len(files) == 1, history["outputs"]
    return load_file(os.path.join(base, "output", files[0]["subfolder"], files[0]["filename"]))["latent_tensor"]

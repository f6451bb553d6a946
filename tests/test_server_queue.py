"""Ten mixed prompts queued back to back on the real server, one cancelled halfway.

Every other prompt must succeed with the outputs it gives when run alone, and the server's resident memory must
stay flat. Each queued prompt reads its own copy of the input files, so ComfyUI's cache cannot hand back an
earlier result: every node after the checkpoint loader runs again.
"""
import os
import shutil

import torch

from reenact_cli.api_client import DONE_EVENTS, EventStream
from reenact_core.embedding_file import load_embedding
from reenact_core.events import LOSS_EVENT
from reenact_testkit.server_env import REFERENCE_VIDEO, TARGET_IMAGE
from reenact_testkit.server_prompts import (api_prompt, run_ok, saved_embedding_path, saved_latent, server_embedding,
                                           with_saved_latent)



def resident_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def copy_input(base, name, tag):
    stem, ext = os.path.splitext(name)
    copy = f"{stem}_{tag}{ext}"
    shutil.copy(os.path.join(base, "input", name), os.path.join(base, "input", copy))
    return copy


def invert_prompt(client, base, seed, tag, steps=1):
    return api_prompt(client, "reenact_invert_motion.json",
                      LoadMotionReference={"video": copy_input(base, REFERENCE_VIDEO, tag)},
                      OptimizeMotionEmbedding={"steps": steps, "seed": seed},
                      SaveMotionEmbedding={"filename_prefix": f"queue/{tag}"})


def transfer_prompt(client, base, embedding_name, seed, tag):
    prompt = api_prompt(client, "reenact_transfer_motion.json", LoadImage={"image": copy_input(base, TARGET_IMAGE, tag)},
                        LoadMotionEmbedding={"embedding_name": embedding_name}, KSampler={"seed": seed, "steps": 1},
                        SaveVideo={"filename_prefix": f"video/queue_{tag}"})
    return with_saved_latent(prompt, f"latents/queue_{tag}")


def result_of(base, kind, history):
    if kind == "invert":
        return load_embedding(saved_embedding_path(base, history)).tokens
    return saved_latent(base, history)


def test_ten_queued_prompts_with_one_cancelled(comfy_server):
    server, client = comfy_server
    base = server.base_directory
    embedding_name = server_embedding(server, 7, "queue/shared")

    plan = [("invert", 11), ("transfer", 21), ("transfer", 22), ("invert", 12), ("cancel", 13),
            ("transfer", 23), ("invert", 14), ("transfer", 24), ("transfer", 25), ("invert", 15)]
    assert len(plan) == 10

    def build(kind, seed, tag):
        if kind == "transfer":
            return transfer_prompt(client, base, embedding_name, seed, tag)
        return invert_prompt(client, base, seed, tag, steps=40 if kind == "cancel" else 1)

    alone = {}
    for kind, seed in plan:
        if kind != "cancel":
            _, history = run_ok(client, build(kind, seed, f"alone{seed}"))
            alone[seed] = result_of(base, kind, history)

    memory_before = resident_mb(server.process.pid)
    memory_after_each = []
    with EventStream(client) as stream:
        prompt_ids = [client.queue(build(kind, seed, f"queued{seed}")) for kind, seed in plan]
        cancel_id = prompt_ids[4]
        stream.wait_for(lambda: any(d["points"] for d in stream.of(cancel_id, LOSS_EVENT))
                        or stream.of(cancel_id, "execution_success"))
        client.interrupt()
        for prompt_id in prompt_ids:
            stream.wait_for(lambda: any(stream.of(prompt_id, kind) for kind in DONE_EVENTS))
            memory_after_each.append(resident_mb(server.process.pid))
    for prompt_id, (kind, seed) in zip(prompt_ids, plan):
        entry = client.history(prompt_id)
        status = entry["status"]["status_str"]
        if kind == "cancel":
            assert status == "error"
            assert any(m[0] == "execution_interrupted" for m in entry["status"]["messages"])
            continue
        assert status == "success", entry["status"]["messages"]
        result = result_of(base, kind, entry)
        assert torch.allclose(result, alone[seed], rtol=1e-4, atol=1e-4 * alone[seed].abs().max().item()), \
            f"{kind} seed {seed} differs from its run alone"

    growth = max(memory_after_each[2:]) - memory_after_each[2]
    assert growth < 300, f"server memory grew by {growth:.0f} MB over the queue (before: {memory_before:.0f} MB, " \
                         f"after each: {[round(m) for m in memory_after_each]})"

"""The API prompt a job queues: the bundled workflows with the job's inputs and settings, or, with --toy, the demo's
toy graph (reenact_toy's loader and conditioning nodes in SVD's place; tests and the demo only).

Every job on a server uses the same loader inputs, so ComfyUI keeps the model loaded between jobs.
"""
import json
import os

from ..lever_flags import APPLY_LEVERS, OPTIMIZE_LEVERS
from ..locate import PACK_ROOT
from ..workflow_api import patched, ui_to_api

LIBRARY_FOLDER = "reenact_library"   # the subfolder used on the servers: input/, models/motion_embeddings/
TOY_INIT = "reenact_demo/toy_init.safetensors"


def embedding_prefix(job_id: str) -> str:
    return f"{LIBRARY_FOLDER}/{job_id}"


def bundled(name: str, object_info: dict) -> dict:
    """A bundled workflow as the API prompt the server's own schemas give it."""
    with open(os.path.join(PACK_ROOT, "example_workflows", name)) as f:
        return ui_to_api(json.load(f), object_info)


def learn_prompt(job, uploaded_reference: str, object_info: dict, resume: str = "none") -> dict:
    s = job.settings
    if s.get("toy"):
        return _toy_learn(job, uploaded_reference, object_info, resume)
    return patched(bundled("reenact_invert_motion.json", object_info), {
        "ImageOnlyCheckpointLoader": {"ckpt_name": s["checkpoint"]},
        "LoadMotionReference": {"video": uploaded_reference, "frame_count": s["frames"], "width": s["width"],
                                "height": s["height"]},
        "OptimizeMotionEmbedding": {"steps": s["steps"], "seed": s["seed"], "run_name": job.id,
                                    "save_every": s["save_every"], "resume": resume,
                                    **levers(s, OPTIMIZE_LEVERS)},
        "SaveMotionEmbedding": {"filename_prefix": embedding_prefix(job.id)}})


def apply_prompt(job, uploaded_image: str, embedding_name: str, object_info: dict) -> dict:
    s = job.settings
    if s.get("toy"):
        return _toy_apply(job, uploaded_image, embedding_name, object_info)
    return patched(bundled("reenact_transfer_motion.json", object_info), {
        "ImageOnlyCheckpointLoader": {"ckpt_name": s["checkpoint"]},
        "LoadImage": {"image": uploaded_image},
        "LoadMotionEmbedding": {"embedding_name": embedding_name},
        "SVD_img2vid_Conditioning": {"width": s["width"], "height": s["height"], "video_frames": s["frames"]},
        "KSampler": {"steps": s["sampler_steps"], "seed": s["seed"]},
        "ApplyMotionEmbedding": levers(s, APPLY_LEVERS),
        "SaveVideo": {"filename_prefix": f"{LIBRARY_FOLDER}/{job.id}"}})


def levers(settings: dict, names) -> dict:
    """The job's levers (lever_flags) that belong to one node."""
    return {k: v for k, v in settings.get("levers", {}).items() if k in names}


def _toy_graph(reference, target, job, object_info):
    from ..demo import demo_prompt
    s = job.settings
    spec = {"frames": s["frames"], "fps": s["fps"], "size_px": s["width"]}
    return demo_prompt(reference, target, spec, s["steps"], s["seed"], object_info)


def _toy_learn(job, reference, object_info, resume):
    graph = _toy_graph(reference, "unused.png", job, object_info)
    prompt = {k: graph[k] for k in ("1", "2", "3", "4", "5")}
    prompt["4"]["inputs"].update(run_name=job.id, save_every=job.settings["save_every"], resume=resume,
                                 **levers(job.settings, OPTIMIZE_LEVERS))
    prompt["5"]["inputs"]["filename_prefix"] = embedding_prefix(job.id)
    return prompt


def _toy_apply(job, image, embedding_name, object_info):
    graph = _toy_graph("unused.mp4", image, job, object_info)
    prompt = {k: graph[k] for k in ("1", "6", "7", "8", "9", "10", "11", "12")}
    prompt["13"] = {"class_type": "LoadMotionEmbedding", "inputs": {"embedding_name": embedding_name},
                    "_meta": {"title": "Load Motion Embedding"}}
    prompt["8"]["inputs"]["motion_embedding"] = ["13", 0]
    prompt["8"]["inputs"].update(levers(job.settings, APPLY_LEVERS))
    prompt["12"]["inputs"]["filename_prefix"] = f"{LIBRARY_FOLDER}/{job.id}"
    return prompt

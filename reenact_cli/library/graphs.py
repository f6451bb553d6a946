"""The API prompt a job queues: the bundled workflows with the job's inputs and settings, or, with --toy, the demo's
toy graph (reenact_toy's loader and conditioning nodes in SVD's place; tests and the demo only).

Every job on a server uses the same loader inputs, so ComfyUI keeps the model loaded between jobs.
"""
import json
import os

from ..lever_flags import APPLY_LEVERS, OPTIMIZE_LEVERS
from ..locate import PACK_ROOT
from ..workflow_api import nodes_of_type, patched, ui_to_api

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


# The parts of the demo's toy graph a learn job and an apply job run, found by node type (the demo's ids are its own).
TOY_LEARN_TYPES = ("ReenactToySVDLoader", "LoadMotionReference", "LoadMotionEmbedding", "OptimizeMotionEmbedding",
                   "SaveMotionEmbedding")
TOY_APPLY_TYPES = ("ReenactToySVDLoader", "LoadImage", "ReenactToyImg2VidConditioning", "ApplyMotionEmbedding",
                   "KSampler", "VAEDecode", "CreateVideo", "SaveVideo")


def _nodes_of(graph: dict, types) -> dict:
    return {node_id: node for node_id, node in graph.items() if node["class_type"] in types}


def _toy_learn(job, reference, object_info, resume):
    s = job.settings
    prompt = _nodes_of(_toy_graph(reference, "unused.png", job, object_info), TOY_LEARN_TYPES)
    return patched(prompt, {
        "OptimizeMotionEmbedding": {"run_name": job.id, "save_every": s["save_every"], "resume": resume,
                                    **levers(s, OPTIMIZE_LEVERS)},
        "SaveMotionEmbedding": {"filename_prefix": embedding_prefix(job.id)}})


def _toy_apply(job, image, embedding_name, object_info):
    s = job.settings
    prompt = _nodes_of(_toy_graph("unused.mp4", image, job, object_info), TOY_APPLY_TYPES)
    loader = str(max(int(node_id) for node_id in prompt) + 1)
    prompt[loader] = {"class_type": "LoadMotionEmbedding", "inputs": {"embedding_name": embedding_name},
                      "_meta": {"title": "Load Motion Embedding"}}
    for node in nodes_of_type(prompt, "ApplyMotionEmbedding"):
        node["inputs"]["motion_embedding"] = [loader, 0]
    return patched(prompt, {"ApplyMotionEmbedding": levers(s, APPLY_LEVERS),
                            "KSampler": {"steps": s["sampler_steps"]},
                            "SaveVideo": {"filename_prefix": f"{LIBRARY_FOLDER}/{job.id}"}})

"""`python -m reenact_cli.run --demo`: the whole invert-and-transfer graph on a fresh machine with no SVD weights.

A private ComfyUI (CPU; temporary folders, removed when the demo ends, unless --base-directory) gets this pack
plus the demo-only toy nodes (reenact_toy/comfy_nodes.py, with the toy model, its weights and the bundled inputs in
reenact_toy/: the folder is linked into the private ComfyUI's custom_nodes). The graph is the user's one with the
toy in SVD's place: Load Motion Reference (bundled toy clip) -> Load Motion Embedding (the toy's neutral init) ->
Optimize Motion Embedding -> Save Motion Embedding; Load Image (bundled target) -> toy conditioning -> Apply Motion
Embedding -> KSampler -> VAE Decode -> Create Video -> Save Video. It writes the video and a side-by-side
picture (reference over result, expected and tracked paths marked), both labelled as the toy model's.
"""
import os
import shutil
import sys

from PIL import Image

import reenact_toy
from reenact_core.video_frames import decode_all_frames
from reenact_toy import toy_demo, toy_world

from .api_client import ComfyClient
from .session import (EXIT_RUN_FAILED, FAILURES, UserError, download_video, follow, report_server_failure,
                      scratch_folder, start_server)
from .workflow_api import fresh_node_inputs

TOY_NODES = os.path.dirname(os.path.abspath(reenact_toy.__file__))
INIT_NAME = "reenact_demo/toy_init.safetensors"
SAMPLER_STEPS, LEARNING_RATE = 12, 0.03


def demo_prompt(reference: str, target: str, spec: dict, steps: int, seed: int, object_info: dict) -> dict:
    """The API-format graph; node ids are arbitrary, titles show in the progress output. Optimize and Apply Motion
    Embedding start from a fresh node's values (the server's /object_info: the pack's defaults) and change only what
    the toy needs."""
    frames, fps, side = spec["frames"], spec["fps"], spec["size_px"]

    def node(class_type, title, **inputs):
        return {"class_type": class_type, "inputs": inputs, "_meta": {"title": title}}

    return {
        "1": node("ReenactToySVDLoader", "Toy SVD Loader (not SVD)"),
        "2": node("LoadMotionReference", "Load Motion Reference", video=reference, start_frame=0,
                  frame_count=frames, stride=1, target_fps=0.0, width=side, height=side, resize_mode="crop"),
        "3": node("LoadMotionEmbedding", "Load Motion Embedding (toy init)", embedding_name=INIT_NAME),
        "4": node("OptimizeMotionEmbedding", "Optimize Motion Embedding", **{
                  **fresh_node_inputs(object_info["OptimizeMotionEmbedding"]), "model": ["1", 0], "vae": ["1", 1],
                  "reference": ["2", 0], "init_embedding": ["3", 0], "steps": steps, "learning_rate": LEARNING_RATE,
                  "seed": seed, "fps": fps, "gradient_checkpointing": "off", "precision": "fp32",
                  "source_name": ["2", 3], "run_name": "toy_demo"}),
        "5": node("SaveMotionEmbedding", "Save Motion Embedding", motion_embedding=["4", 0],
                  filename_prefix="reenact_demo/toy_motion"),
        "6": node("LoadImage", "Load Image (toy target)", image=target),
        "7": node("ReenactToyImg2VidConditioning", "Toy Img2Vid Conditioning", vae=["1", 1], start_image=["6", 0],
                  video_frames=frames),
        "8": node("ApplyMotionEmbedding", "Apply Motion Embedding", **{
                  **fresh_node_inputs(object_info["ApplyMotionEmbedding"]), "positive": ["7", 0],
                  "negative": ["7", 1], "motion_embedding": ["4", 0], "latent": ["7", 2]}),
        "9": node("KSampler", "KSampler", model=["1", 0], seed=seed, steps=SAMPLER_STEPS, cfg=1.0,
                  sampler_name="euler", scheduler="karras", positive=["8", 0], negative=["8", 1],
                  latent_image=["7", 2], denoise=1.0),
        "10": node("VAEDecode", "VAE Decode", samples=["9", 0], vae=["1", 1]),
        "11": node("CreateVideo", "Create Video", images=["10", 0], fps=float(fps)),
        "12": node("SaveVideo", "Save Video", video=["11", 0], filename_prefix="video/reenact_demo_toy",
                   format="auto", codec="auto"),
    }


def read_frames(path: str):
    frames = decode_all_frames(path)
    if not len(frames):
        raise UserError(f"expected video frames in {path}, got none")
    return frames


def install_init(base_directory: str) -> None:
    """Put the bundled init embedding where Load Motion Embedding finds it; never replace another file (two servers
    started at once may both put it: the second finds the same bytes)."""
    from reenact_core.file_writes import place_new
    source = os.path.join(toy_demo.ASSETS, toy_demo.INIT)
    destination = os.path.join(base_directory, "models", "motion_embeddings", INIT_NAME)
    if not place_new(destination, lambda path: shutil.copyfile(source, path)):
        with open(source, "rb") as a, open(destination, "rb") as b:
            if a.read() != b.read():
                raise UserError(f"expected {destination} to be the demo's bundled init or absent, got another "
                                f"file; move it away or pick another --base-directory")


def run_demo(args) -> int:
    spec = toy_demo.load_spec()
    print(toy_demo.LABEL, flush=True)
    with scratch_folder("reenact_demo_") as workdir:
        args.base_directory = args.base_directory or os.path.join(workdir, "comfyui")
        args.cpu = True
        server = None
        try:
            install_init(args.base_directory)
            server = start_server(args, workdir, extra_nodes={"reenact-anything-toy-demo": TOY_NODES})
            return demo_on(server, args, spec)
        except FAILURES as e:
            return report_server_failure(e, os.path.join(workdir, "comfyui.log"))
        finally:
            if server is not None:
                server.stop()


def demo_on(server, args, spec) -> int:
    """Everything after the private server is up; its temporary folders go when run_demo's `with` ends."""
    client = ComfyClient(server.url)
    object_info = client.object_info()
    if "ReenactToySVDLoader" not in object_info:
        raise UserError(f"the demo's toy nodes did not load; the end of ComfyUI's log:\n{server.log_tail(3000)}")
    reference = client.upload(os.path.join(toy_demo.ASSETS, toy_demo.REFERENCE), subfolder="reenact_demo")
    target = client.upload(os.path.join(toy_demo.ASSETS, toy_demo.TARGET), subfolder="reenact_demo")
    status, history = follow(client, demo_prompt(reference, target, spec, args.steps, args.seed, object_info))
    if status:
        return status
    video = os.path.abspath(download_video(client, history, args.output))
    result = read_frames(video)
    score = toy_demo.score_frames(result, spec)
    picture = os.path.splitext(video)[0] + "_side_by_side.png"
    reference_frames = read_frames(os.path.join(toy_demo.ASSETS, toy_demo.REFERENCE))
    Image.fromarray(toy_demo.side_by_side(reference_frames, result, spec, score)).save(picture)
    print(f"wrote {video}\nwrote {picture}")
    print(f"toy motion score: mean path error {score['mean_err']:.2f} latent px, end error "
          f"{score['end_err']:.2f} px: {'matches' if score['matches'] else 'does not match'} the reference's "
          f"motion (a match: under {toy_world.MATCH_MEAN_ERROR} px mean and {toy_world.MATCH_END_ERROR} px at the end)")
    if len(result) != spec["frames"]:
        print(f"error: expected a video of {spec['frames']} frames, got {len(result)}", file=sys.stderr)
        return EXIT_RUN_FAILED
    return 0

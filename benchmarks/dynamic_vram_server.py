"""Optimize, sample, optimize with previews: one MODEL, one real ComfyUI server, its default model loading.

Why: ComfyUI 0.33+ on NVIDIA loads models through ModelPatcherDynamic (comfy-aimdo, "dynamic VRAM"), and the pack
runs Optimize Motion Embedding and its previews on ComfyUI's non-dynamic delegate of that MODEL
(reenact_core/non_dynamic.py). Only a real server on a GPU shows that this works beside ComfyUI's own dynamic
sampling of the same cached MODEL, in one session, and what the second copy costs. On one server, in order:

  1. optimize          ImageOnlyCheckpointLoader (the full-size random-weight SVD checkpoint) -> Load Motion
                       Reference -> Inflate CLIP Embedding -> Optimize Motion Embedding (3 steps)
  2. ksampler          the same loader (ComfyUI's cache keeps the MODEL) -> SVD_img2vid_Conditioning -> KSampler
                       -> VAEDecode
  3. optimize_preview  prompt 1 again with preview_every 1 (the previews sample the delegate)

Per prompt: success or the error /history reports, wall time, the most memory /system_stats reported while it ran
(polled), and the server log's model-loading lines (ComfyUI's "prepared for dynamic VRAM loading" for a dynamic
load, "loaded completely/partially" for an ordinary one, and the pack's own delegate line). No --cpu on a GPU and no
--disable-dynamic-vram: the server loads models as a user's would. --tiny runs the same prompts on a CPU server
(--cpu) at 3 x 64 x 64 with one step each; ComfyUI makes no dynamic patcher there, so the JSON says "dynamic": false.

  python benchmarks/dynamic_vram_server.py            # GPU: 14 x 576 x 1024, full-size random-weight SVD
  python benchmarks/dynamic_vram_server.py --tiny     # CPU: 3 x 64 x 64, the same checkpoint

The checkpoint (4.6 GB, reenact_testkit/svd_checkpoint.py) is written on first use to REENACT_CACHE_DIR or
~/.cache/reenact_anything, in a child process that hides the GPU, so this process never holds a CUDA context.
The frontend is not needed (--front-end-root points at an empty folder) and API nodes are not loaded. Prints one
line per prompt, then as its LAST line one JSON object.
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
from reenact_cli.api_client import ApiError, ComfyClient  # noqa: E402
from reenact_cli.comfy_server import ComfyServer, ServerError  # noqa: E402
from reenact_cli.locate import PACK_ROOT, find_comfyui_or_exit  # noqa: E402
from reenact_cli.workflow_api import default_value, is_widget  # noqa: E402
from reenact_core.non_dynamic import DELEGATE_LOG  # noqa: E402

REFERENCE = "dynamic_vram_reference.mp4"
CHECKPOINT = "svd.safetensors"  # server_env.py links the random checkpoint under this name
PACK_NODES = ("LoadMotionReference", "InflateCLIPEmbedding", "OptimizeMotionEmbedding")
# ComfyUI's log lines (comfy/model_patcher.py, main.py of 0.33)
DYNAMIC_LOAD = re.compile(r"Model (\w+) prepared for dynamic VRAM loading")
REQUESTED_LOAD = re.compile(r"Requested to load (\w+)")
ORDINARY_LOAD = re.compile(r"loaded (completely|partially);")
DYNAMIC_ENABLED = "DynamicVRAM support detected and enabled"
GB = 1024 ** 3


class Stopped(Exception):
    """SIGTERM (gpu_check.sh's deadline): stop the server and still print what was measured."""


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tiny", action="store_true",
                   help="CPU server (--cpu), 3 frames of 64 x 64, 1 optimisation step and 1 sampler step")
    p.add_argument("--frames", type=int, default=None, help="default 14, --tiny 3")
    p.add_argument("--width", type=int, default=None, help="default 1024, --tiny 64")
    p.add_argument("--height", type=int, default=None, help="default 576, --tiny 64")
    p.add_argument("--steps", type=int, default=None, help="Optimize Motion Embedding's steps; default 3, --tiny 1")
    p.add_argument("--sampler-steps", type=int, default=None, help="KSampler's steps; default 10, --tiny 1")
    p.add_argument("--base-directory", default=None,
                   help="the server's base directory (default: a new temporary folder)")
    p.add_argument("--prompt-timeout", type=float, default=900, help="seconds per prompt")
    p.add_argument("--prepare-only", action="store_true",
                   help="only write the checkpoint and input files into --base-directory (runs in a child)")
    args = p.parse_args(argv)
    tiny = args.tiny
    args.frames = args.frames or (3 if tiny else 14)
    args.width = args.width or (64 if tiny else 1024)
    args.height = args.height or (64 if tiny else 576)
    # On a CPU the full-size UNet takes minutes per optimisation step (each preview is 10 more forwards), so --tiny
    # does one of each: the order and the code paths are what it checks.
    args.steps = args.steps or (1 if tiny else 3)
    args.sampler_steps = args.sampler_steps or (1 if tiny else 10)
    return args


def prepare_here(base: str, frames: int) -> None:
    """The child's work: ComfyUI's classes give the checkpoint's shapes, so comfy is imported here, on the CPU."""
    from reenact_cli.locate import setup_comfyui
    setup_comfyui(cpu=True)
    from reenact_testkit.media import moving_square_frames, write_video
    from reenact_testkit.server_env import prepare_base_directory
    prepare_base_directory(base, PACK_ROOT)
    write_video(os.path.join(base, "input", REFERENCE), moving_square_frames(count=frames + 2))


def prepare(base: str, frames: int) -> float:
    """Run prepare_here in a child with no visible GPU; returns its seconds (the checkpoint write, when uncached)."""
    start = time.monotonic()
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    done = subprocess.run([sys.executable, os.path.abspath(__file__), "--prepare-only", "--base-directory", base,
                           "--frames", str(frames)], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"preparing {base} failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    return time.monotonic() - start


def node(info: dict, class_type: str, **given) -> dict:
    """An API-format node: every required widget at the default /object_info gives, then `given` (values or
    [node id, output] links). Defaults come from the live server, so inputs others add later need no change here."""
    if class_type not in info:
        raise RuntimeError(f"the server has no node {class_type}; is the pack loaded? (see the server log)")
    spec = info[class_type]["input"]
    known = {**spec.get("required", {}), **spec.get("optional", {})}
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise RuntimeError(f"{class_type} has no input(s) {unknown}; it has {sorted(known)}")
    inputs = {name: default_value(s) for name, s in spec.get("required", {}).items() if is_widget(s)}
    inputs.update(given)
    return {"class_type": class_type, "inputs": inputs}


def optimize_prompt(info: dict, args, preview_every: int) -> dict:
    """Prompt 1 and 3: the same ids and loader inputs as the sampler prompt, so the MODEL comes from the cache."""
    return {
        "1": node(info, "ImageOnlyCheckpointLoader", ckpt_name=CHECKPOINT),
        "2": node(info, "LoadMotionReference", video=REFERENCE, frame_count=args.frames, width=args.width,
                  height=args.height, resize_mode="crop"),
        "3": node(info, "InflateCLIPEmbedding", clip_vision=["1", 1], images=["2", 0]),
        "4": node(info, "OptimizeMotionEmbedding", model=["1", 0], vae=["1", 2], reference=["2", 0],
                  init_embedding=["3", 0], steps=args.steps, preview_every=preview_every, run_name="dynamic_vram"),
        "5": node(info, "PreviewImage", images=["4", 1]),
    }


def sampler_prompt(info: dict, args) -> dict:
    """Prompt 2: ComfyUI's own image-to-video sampling on the cached MODEL (dynamic on NVIDIA)."""
    from reenact_testkit.server_env import TARGET_IMAGE
    return {
        "1": node(info, "ImageOnlyCheckpointLoader", ckpt_name=CHECKPOINT),
        "6": node(info, "LoadImage", image=TARGET_IMAGE),
        "7": node(info, "SVD_img2vid_Conditioning", clip_vision=["1", 1], init_image=["6", 0], vae=["1", 2],
                  width=args.width, height=args.height, video_frames=args.frames),
        "8": node(info, "KSampler", model=["1", 0], positive=["7", 0], negative=["7", 1], latent_image=["7", 2],
                  steps=args.sampler_steps, cfg=2.5, sampler_name="euler", scheduler="karras", seed=0),
        "9": node(info, "VAEDecode", samples=["8", 0], vae=["1", 2]),
        "10": node(info, "PreviewImage", images=["9", 0]),
    }


class MemoryPoller:
    """Polls /system_stats while a prompt runs: the server reports memory only as a snapshot, so the most seen
    is the closest thing to a peak it offers (ComfyUI reports RAM in the vram fields on a CPU)."""

    def __init__(self, client: ComfyClient, every: float = 0.5):
        self.client, self.every = client, every
        self.used_max = self.reserved_max = 0.0
        self.samples = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.poll, daemon=True)

    def sample(self) -> None:
        device = self.client.get_json("/system_stats", timeout=10)["devices"][0]
        self.used_max = max(self.used_max, device["vram_total"] - device["vram_free"])
        self.reserved_max = max(self.reserved_max, device.get("torch_vram_total", 0))
        self.samples += 1

    def poll(self) -> None:
        while not self.stop.is_set():
            try:
                self.sample()
            except (OSError, ValueError, KeyError):
                pass  # a busy server may miss a poll; the next one counts
            self.stop.wait(self.every)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(15)

    def summary(self) -> dict:
        return {"used_gb_max": round(self.used_max / GB, 2), "torch_reserved_gb_max": round(self.reserved_max / GB, 2),
                "memory_samples": self.samples}


def log_size(path: str) -> int:
    return os.path.getsize(path) if os.path.exists(path) else 0


def log_since(path: str, offset: int) -> str:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")


def model_loads(log: str) -> dict:
    """What the server log says about loading, for one prompt's part of it."""
    return {"requested_loads": REQUESTED_LOAD.findall(log), "dynamic_loads": DYNAMIC_LOAD.findall(log),
            "ordinary_loads": len(ORDINARY_LOAD.findall(log)), "delegate_used": DELEGATE_LOG in log}


def outcome(client: ComfyClient, run) -> tuple[str, str | None]:
    """(status, error) from /history, the record a user's frontend reads; the websocket's word if history has none."""
    entry = client.history(run.prompt_id) if run.status != "timeout" else {}
    status = entry.get("status", {}).get("status_str") or run.status
    for kind, data in entry.get("status", {}).get("messages", []):
        if kind == "execution_error":
            return status, f"{data.get('node_type')}: {data.get('exception_type')}: {data.get('exception_message')}"
    if run.error:
        return status, f"{run.error.get('node_type')}: {run.error.get('exception_message')}"
    return status, None if status == "success" else f"ended as {run.status}"


def run_prompt(client: ComfyClient, server: ComfyServer, prompt: dict, timeout: float) -> dict:
    """Queue one prompt, wait for it, and say what happened: a rejected prompt is a result, not a crash."""
    offset = log_size(server.log_path)
    start = time.monotonic()
    with MemoryPoller(client) as memory:
        try:
            run = client.run(prompt, timeout=timeout)
        except ApiError as error:
            return {"status": "rejected", "error": str(error)[:2000], "wall_s": round(time.monotonic() - start, 2)}
    wall = time.monotonic() - start
    if run.status == "timeout":
        client.interrupt()
    status, error = outcome(client, run)
    return {"status": status, "error": error, "wall_s": round(wall, 2), **memory.summary(),
            **model_loads(log_since(server.log_path, offset))}


def server_facts(client: ComfyClient, log: str) -> dict:
    stats = client.get_json("/system_stats")
    device = stats["devices"][0]
    return {"comfyui_version": stats["system"].get("comfyui_version"),
            "pytorch_version": stats["system"].get("pytorch_version"), "device_name": device.get("name"),
            "device_type": device.get("type"), "memory_total_gb": round(device["vram_total"] / GB, 2),
            "dynamic_vram_enabled": DYNAMIC_ENABLED in log}


def run_all(args, base: str, result: dict) -> None:
    """Start the server with its default model loading (--cpu only for --tiny) and run the three prompts."""
    comfyui = find_comfyui_or_exit()
    frontend = os.path.join(base, "empty_frontend")  # the frontend package is large and not needed by the API
    os.makedirs(frontend, exist_ok=True)
    extra = ("--front-end-root", frontend, "--disable-api-nodes")
    server = ComfyServer(comfyui, base, cpu=args.tiny, extra_args=extra,
                         log_path=os.path.join(base, "comfyui.log"))
    start, offset = time.monotonic(), log_size(server.log_path)  # the log is appended to when the folder is reused
    server.start(timeout=600)  # not `with server:`, whose __enter__ would start a second one
    try:
        result.update(server_start_s=round(time.monotonic() - start, 1), server_log=server.log_path)
        run_prompts(args, server, offset, result)
    finally:
        server.stop()


def run_prompts(args, server: ComfyServer, log_offset: int, result: dict) -> None:
    """The three prompts in order on the running server, filled into `result` as each ends (so a deadline keeps
    what was done); each one's row is printed too."""
    client = ComfyClient(server.url)
    info = client.object_info()
    missing = [n for n in PACK_NODES if n not in info]
    if missing:
        raise RuntimeError(f"the pack's nodes {missing} are not loaded; server log:\n{server.log_tail()}")
    result.update(server_facts(client, log_since(server.log_path, log_offset)))
    prompts = {"optimize": optimize_prompt(info, args, 0), "ksampler": sampler_prompt(info, args),
               "optimize_preview": optimize_prompt(info, args, 1)}
    result["prompts"] = {}
    for name, prompt in prompts.items():
        row = result["prompts"][name] = run_prompt(client, server, prompt, args.prompt_timeout)
        print(f"{name}: {row['status']} in {row['wall_s']} s, {row.get('used_gb_max')} GB used at most, "
              f"dynamic loads {row.get('dynamic_loads')}, delegate {row.get('delegate_used')}"
              + (f"\n  error: {row['error']}" if row.get("error") else ""), flush=True)


def stop(signum, frame):
    raise Stopped("stopped by SIGTERM (the caller's deadline) before the end")


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.prepare_only:
        prepare_here(args.base_directory, args.frames)
        return 0
    os.environ.setdefault("PYTHONUNBUFFERED", "1")  # the server's log lines land in the file as they happen
    base = os.path.abspath(args.base_directory or tempfile.mkdtemp(prefix="dynamic_vram_"))
    os.makedirs(base, exist_ok=True)
    result = {"tiny": args.tiny, "frames": args.frames, "height": args.height, "width": args.width,
              "steps": args.steps, "sampler_steps": args.sampler_steps}
    signal.signal(signal.SIGTERM, stop)
    try:
        result["prepare_s"] = round(prepare(base, args.frames), 1)
        run_all(args, base, result)
    except (RuntimeError, ServerError, OSError, Stopped) as error:
        result["error"] = str(error)[-4000:]
    prompts = result.get("prompts", {})
    result["ok"] = bool(prompts) and all(p["status"] == "success" for p in prompts.values())
    result["dynamic"] = any("SVD_img2vid" in p.get("dynamic_loads", []) for p in prompts.values())
    result["delegate_used"] = any(p.get("delegate_used") for p in prompts.values())
    if args.tiny:
        result["note"] = "CPU server (--cpu): ComfyUI makes no dynamic patcher there, so nothing dynamic to show"
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

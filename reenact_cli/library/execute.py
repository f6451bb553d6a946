"""One attempt of one job on one server: upload its input, queue its graph, follow it over the websocket with a
stall timeout, and put its output into the library atomically (never over an existing file).

Used by both back-ends: the local one calls it in a thread per server, the Ray one inside the server's actor.
"""
import asyncio
import json
import os
import shutil
import time
import urllib.error

import aiohttp

from reenact_core.checkpoint_names import STEP_FILE, list_checkpoints

from ..api_client import ApiError, ComfyClient
from ..comfy_server import responds
from .graphs import LIBRARY_FOLDER, apply_prompt, learn_prompt
from .jobs import Outcome

CANCELLED = "cancelled by the user (Ctrl-C)"
STOP_WAIT = 30      # seconds a cancelled prompt is given to leave its server
STOP_REPEAT = 2     # seconds between two asks to stop it


def put_atomically(source: str, destination: str) -> str:
    """Copy to a temporary name beside `destination`, then link it into place: the file appears whole or not at
    all, and an existing file (another run's output of the same job: the same bytes) is never replaced."""
    os.makedirs(os.path.dirname(destination), exist_ok=True)
    partial = f"{destination}.{os.getpid()}.partial"
    shutil.copyfile(source, partial)
    try:
        os.link(partial, destination)
    except FileExistsError:
        pass
    finally:
        os.unlink(partial)
    return destination


async def _follow(client: ComfyClient, prompt: dict, stall_timeout: float, cancelled) -> tuple[str, dict, str]:
    """(status, error, prompt id): success | error | interrupted | stalled | cancelled | server_down."""
    ws_url = client.url.replace("http", "ws", 1) + f"/ws?clientId={client.client_id}"
    try:
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(ws_url, max_msg_size=0, heartbeat=None) as ws:
                prompt_id = await asyncio.to_thread(client.queue, prompt, stall_timeout)
                last = time.monotonic()
                while True:
                    if cancelled():
                        return "cancelled", {}, prompt_id
                    if time.monotonic() - last > stall_timeout:
                        return "stalled", {}, prompt_id
                    try:
                        message = await asyncio.wait_for(ws.receive(), 1.0)
                    except asyncio.TimeoutError:
                        continue
                    if message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.ERROR):
                        return "server_down", {}, prompt_id
                    if message.type != aiohttp.WSMsgType.TEXT:
                        last = time.monotonic()
                        continue
                    event = json.loads(message.data)
                    kind, data = event.get("type"), event.get("data") or {}
                    if data.get("prompt_id") not in (None, prompt_id):
                        continue
                    last = time.monotonic()
                    if kind == "execution_success":
                        return "success", {}, prompt_id
                    if kind == "execution_error":
                        return "error", data, prompt_id
                    if kind == "execution_interrupted":
                        return "interrupted", {}, prompt_id
    except (aiohttp.ClientError, ConnectionError, OSError):
        return "server_down", {}, ""


def stop_prompt(client: ComfyClient, prompt_id: str, wait: float = STOP_WAIT) -> bool:
    """Cancel the prompt and wait until its server no longer holds it; False if it still does after `wait`. Asked
    again every STOP_REPEAT seconds: ComfyUI clears its interrupt flag as a prompt starts, so an interrupt that lands
    while the prompt is taken from the queue is lost."""
    deadline = time.monotonic() + wait
    asked = None
    while True:
        if asked is None or time.monotonic() - asked >= STOP_REPEAT:
            client.cancel(prompt_id, timeout=STOP_REPEAT * 5)
            asked = time.monotonic()
        if not client.in_queue(prompt_id, timeout=STOP_REPEAT * 5):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.25)


def _failure(status: str, error: dict, url: str, stall_timeout: float, detail: str = "", seconds=None) -> Outcome:
    if status == "stalled":
        alive = responds(url, timeout=5)
        return Outcome(False, f"stalled: no word from {url} for {stall_timeout:.0f} s{detail}", server_down=not alive,
                       seconds=seconds or {})
    if status == "server_down":
        return Outcome(False, f"server {url} went away during the job", server_down=True)
    if status == "interrupted":
        return Outcome(False, f"interrupted on {url} (by someone else)")
    if status == "cancelled":
        return Outcome(False, CANCELLED, retry=False)
    return Outcome(False, f"execution error on {url}: {error.get('node_type', '?')}: "
                          f"{str(error.get('exception_message', '')).strip()}")


def latest_checkpoint(models_dir: str | None, job_id: str, steps: int) -> str:
    """The newest run checkpoint of this job in a shared models folder that a run of `steps` can go on from, as
    Optimize's `resume` names it; "none" when there is none (a finished run's last checkpoint is not one)."""
    if not models_dir:
        return "none"
    mine = [c for c in list_checkpoints(os.path.join(models_dir, "motion_embeddings"))
            if c.split("/")[1].startswith(f"{job_id}_") and int(STEP_FILE.search(c).group(1)) < steps]
    return max(mine, key=lambda c: (c.split("/")[1], c)) if mine else "none"


def run_job(job, url: str, models_dir: str | None, library: str, stall_timeout: float, cancelled=lambda: False):
    """Run `job` on the server at `url`; returns an Outcome. `models_dir`: that server's models folder, where
    this machine can read it (embeddings and checkpoints are fetched from there)."""
    client = ComfyClient(url)
    seconds = {}
    started = time.monotonic()
    try:
        object_info = client.get_json("/object_info", timeout=stall_timeout)
        if job.kind == "learn":
            reference = job.inputs["reference"]
            uploaded = client.upload(reference, subfolder=LIBRARY_FOLDER, timeout=stall_timeout,
                                     name=job.id + os.path.splitext(reference)[1].lower())
            resume = latest_checkpoint(models_dir, job.id, job.settings["steps"])
            prompt = learn_prompt(job, uploaded, object_info, resume)
        else:
            uploaded = client.upload(job.inputs["image"], subfolder=LIBRARY_FOLDER, timeout=stall_timeout,
                                     name=job.id + os.path.splitext(job.inputs["image"])[1].lower())
            embedding = place_embedding(library, models_dir, job.inputs["motion"])
            prompt = apply_prompt(job, uploaded, embedding, object_info)
        seconds["upload"] = round(time.monotonic() - started, 3)
        if cancelled():
            return Outcome(False, CANCELLED, retry=False, seconds=seconds)
        run_started = time.monotonic()
        status, error, prompt_id = asyncio.run(_follow(client, prompt, stall_timeout, cancelled))
        seconds["run"] = round(time.monotonic() - run_started, 3)
        if status != "success":
            try:
                if status == "cancelled":
                    stop_prompt(client, prompt_id)
                elif status == "stalled":  # the server may be hung: asked once, not waited for
                    client.cancel(prompt_id, timeout=5)
            except (OSError, ApiError):
                pass
            outcome = _failure(status, error, url, stall_timeout)
            outcome.seconds = seconds
            return outcome
        fetch_started = time.monotonic()
        history = client.history(prompt_id)
        output = fetch_output(client, job, history, models_dir, library)
        seconds["server_execution"] = execution_seconds(history)
        seconds["fetch"] = round(time.monotonic() - fetch_started, 3)
        seconds["total"] = round(time.monotonic() - started, 3)
        resumed = [n["inputs"].get("resume") for n in prompt.values() if n["class_type"] == "OptimizeMotionEmbedding"]
        if resumed and resumed[0] not in (None, "none"):
            seconds["resumed_from"] = resumed[0]
        return Outcome(True, output=output, seconds=seconds)
    except (TimeoutError, asyncio.TimeoutError) as e:
        return _failure("stalled", {}, url, stall_timeout, f" ({type(e).__name__})", seconds)
    except urllib.error.URLError as e:
        if isinstance(e.reason, TimeoutError):
            return _failure("stalled", {}, url, stall_timeout, "", seconds)
        return Outcome(False, f"server {url} went away during the job ({e})", server_down=True, seconds=seconds)
    except (ConnectionError, OSError) as e:
        return Outcome(False, f"server {url} went away during the job ({e})", server_down=True, seconds=seconds)
    except ApiError as e:
        return Outcome(False, f"the server refused the job: {e}", seconds=seconds)


def place_embedding(library: str, models_dir: str | None, motion: str) -> str:
    """Put the learned motion into the server's motion_embeddings/reenact_library/ (same bytes: left as is)."""
    source = os.path.join(library, "embeddings", f"{motion}.safetensors")
    if not models_dir:
        raise ApiError("expected a server whose models folder this machine can read, to give it the motion")
    put_atomically(source, os.path.join(models_dir, "motion_embeddings", LIBRARY_FOLDER, f"{motion}.safetensors"))
    return f"{LIBRARY_FOLDER}/{motion}.safetensors"


def execution_seconds(history: dict) -> float | None:
    """The server's own time for the prompt, from its history's execution_start and execution_success stamps."""
    stamps = {event: data.get("timestamp") for event, data in history.get("status", {}).get("messages", [])}
    if stamps.get("execution_start") and stamps.get("execution_success"):
        return round((stamps["execution_success"] - stamps["execution_start"]) / 1000, 3)
    return None


def fetch_output(client: ComfyClient, job, history: dict, models_dir: str | None, library: str) -> str:
    outputs = history.get("outputs", {}).values()
    if job.kind == "learn":
        saved = [t[len("saved "):] for out in outputs for t in out.get("text", []) if t.startswith("saved ")]
        if not saved:
            raise ApiError("the run finished without saving an embedding")
        source = os.path.join(models_dir, "motion_embeddings", saved[0])
        return put_atomically(source, os.path.join(library, "embeddings", f"{job.id}.safetensors"))
    videos = [f for out in outputs for f in out.get("images", []) if f["filename"].endswith((".mp4", ".webm"))]
    if not videos:
        raise ApiError("the run finished without a video")
    folder = os.path.join(library, "videos")
    os.makedirs(folder, exist_ok=True)
    partial = os.path.join(folder, f"{job.id}.{os.getpid()}.download")
    client.download(videos[0], partial)
    try:
        os.link(partial, os.path.join(folder, f"{job.id}.mp4"))
    except FileExistsError:
        pass
    finally:
        os.unlink(partial)
    return os.path.join(folder, f"{job.id}.mp4")

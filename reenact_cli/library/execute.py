"""One attempt of one job on one server, run where the server is: the local back-end calls it in a thread per server,
the Ray back-end inside the server's actor, on the server's node. Its inputs come in as bytes and its output goes
back as bytes, so it needs nothing of the library's folder and the driver never needs to reach the server.

An attempt uploads its input, queues its graph, follows it (ComfyClient.run) with a stall timeout, and reads its
output. How it failed decides what happens to the server (`Outcome`):
- the connection failed: the server is down (no more jobs);
- the server stopped answering in time: it stalled, and rests until it answers again and no longer holds the
  prompt (`server_state`);
- anything else (a refused graph, an execution error, a missing output): the job's failure, not the server's.
"""
import os
import time
import urllib.error

import aiohttp

from reenact_core.checkpoint_names import STEP_FILE, list_checkpoints
from reenact_core.file_writes import place_bytes

from ..api_client import ApiError, ComfyClient
from .graphs import LIBRARY_FOLDER, apply_prompt, learn_prompt
from .jobs import Outcome

CANCELLED = "cancelled by the user (Ctrl-C)"
STOP_WAIT = 30      # seconds a cancelled prompt is given to leave its server
STOP_REPEAT = 2     # seconds between two asks to stop it
FREE, BUSY, DOWN = "free", "busy", "down"


def connection_failed(error: BaseException) -> bool:
    """True for an error that says nothing listens at the server's address (refused, reset, unreachable), False
    for a timeout (a server that is slow or stopped still holds its connections) and for anything else."""
    if isinstance(error, urllib.error.URLError) and not isinstance(error, urllib.error.HTTPError):
        if not isinstance(error.reason, BaseException):
            return True
        error = error.reason
        if isinstance(error, OSError) and not isinstance(error, TimeoutError):
            return True   # urllib's connect: refused, unreachable, no such host
    if isinstance(error, (TimeoutError, aiohttp.ServerTimeoutError)):
        return False
    return isinstance(error, (ConnectionError, aiohttp.ClientConnectionError))


def timed_out(error: BaseException) -> bool:
    reason = getattr(error, "reason", None)
    return isinstance(error, (TimeoutError, aiohttp.ServerTimeoutError)) or isinstance(reason, TimeoutError)


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


def server_state(url: str, prompt_id: str, timeout: float = 5) -> str:
    """After a stall: FREE when the server answers and no longer holds `prompt_id` (it is asked to drop it while it
    does), BUSY when it still holds it or does not answer in time, DOWN when nothing listens there."""
    client = ComfyClient(url)
    try:
        if prompt_id and client.in_queue(prompt_id, timeout=timeout):
            client.cancel(prompt_id, timeout=timeout)
            return BUSY
        return FREE
    except (OSError, ApiError) as e:
        return DOWN if connection_failed(e) else BUSY


def latest_checkpoint(models_dir: str | None, job_id: str, steps: int) -> str:
    """The newest run checkpoint of this job in the server's models folder that a run of `steps` can go on from, as
    Optimize's `resume` names it; "none" when there is none (a finished run's last checkpoint is not one)."""
    if not models_dir:
        return "none"
    mine = [c for c in list_checkpoints(os.path.join(models_dir, "motion_embeddings"))
            if c.split("/")[1].startswith(f"{job_id}_") and int(STEP_FILE.search(c).group(1)) < steps]
    return max(mine, key=lambda c: (c.split("/")[1], c)) if mine else "none"


def give_server_embedding(models_dir: str | None, motion: str, data: bytes) -> str:
    """Put a learned motion into the server's motion_embeddings/reenact_library/ (an existing file of that motion
    holds the same bytes: its name is its job id, a hash of what made it) and return its name for Load Motion
    Embedding."""
    if not models_dir:
        raise ApiError("expected a server whose models folder is known, to give it the motion")
    place_bytes(os.path.join(models_dir, "motion_embeddings", LIBRARY_FOLDER, f"{motion}.safetensors"), data)
    return f"{LIBRARY_FOLDER}/{motion}.safetensors"


def run_job(job, files: dict, url: str, models_dir: str | None, stall_timeout: float, cancelled=lambda: False):
    """Run `job` on the server at `url`; an Outcome whose `data` holds the output's bytes. `files`: the job's input
    bytes (library.job_files). `models_dir`: the server's models folder, read here (embeddings, checkpoints)."""
    client = ComfyClient(url)
    seconds, started = {}, time.monotonic()
    try:
        object_info = client.get_json("/object_info", timeout=stall_timeout)
        if job.kind == "learn":
            reference = job.inputs["reference"]
            uploaded = client.upload_bytes(files["reference"], job.id + os.path.splitext(reference)[1].lower(),
                                           subfolder=LIBRARY_FOLDER, timeout=stall_timeout)
            resume = latest_checkpoint(models_dir, job.id, job.settings["steps"])
            prompt = learn_prompt(job, uploaded, object_info, resume)
        else:
            uploaded = client.upload_bytes(files["image"], job.id + os.path.splitext(job.inputs["image"])[1].lower(),
                                           subfolder=LIBRARY_FOLDER, timeout=stall_timeout)
            embedding = give_server_embedding(models_dir, job.inputs["motion"], files["embedding"])
            prompt = apply_prompt(job, uploaded, embedding, object_info)
        seconds["upload"] = round(time.monotonic() - started, 3)
        if cancelled():
            return Outcome(False, CANCELLED, retry=False, seconds=seconds)
        run_started = time.monotonic()
        run = client.run(prompt, stall_timeout=stall_timeout, cancelled=cancelled)
        seconds["run"] = round(time.monotonic() - run_started, 3)
        if run.status != "success":
            if run.status == "cancelled":
                stop_prompt(client, run.prompt_id)
            outcome = _failure(run.status, run.error or {}, url, stall_timeout, seconds)
            outcome.prompt_id = run.prompt_id
            return outcome
        fetch_started = time.monotonic()
        history = client.history(run.prompt_id)
        data = output_bytes(client, job, history, models_dir)
        seconds["server_execution"] = execution_seconds(history)
        seconds["fetch"] = round(time.monotonic() - fetch_started, 3)
        seconds["total"] = round(time.monotonic() - started, 3)
        resumed = [n["inputs"].get("resume") for n in prompt.values() if n["class_type"] == "OptimizeMotionEmbedding"]
        if resumed and resumed[0] not in (None, "none"):
            seconds["resumed_from"] = resumed[0]
        return Outcome(True, data=data, seconds=seconds)
    except ApiError as e:
        return Outcome(False, f"the server refused the job: {e}", seconds=seconds)
    except (OSError, aiohttp.ClientError) as e:
        if connection_failed(e):
            return Outcome(False, f"server {url} went away during the job ({e})", server_down=True, seconds=seconds)
        if timed_out(e):
            return _failure("stalled", {}, url, stall_timeout, seconds, f" ({type(e).__name__})")
        return Outcome(False, f"the attempt on {url} failed: {type(e).__name__}: {e}", seconds=seconds)


def _failure(status: str, error: dict, url: str, stall_timeout: float, seconds: dict, detail: str = "") -> Outcome:
    if status == "stalled":
        return Outcome(False, f"stalled: no word from {url} for {stall_timeout:.0f} s{detail}", stalled=True,
                       seconds=seconds)
    if status == "server_down":
        return Outcome(False, f"server {url} went away during the job", server_down=True, seconds=seconds)
    if status == "interrupted":
        return Outcome(False, f"interrupted on {url} (by someone else)", seconds=seconds)
    if status == "cancelled":
        return Outcome(False, CANCELLED, retry=False, seconds=seconds)
    return Outcome(False, f"execution error on {url}: {error.get('node_type', '?')}: "
                          f"{str(error.get('exception_message', '')).strip()}", seconds=seconds)


def execution_seconds(history: dict) -> float | None:
    """The server's own time for the prompt, from its history's execution_start and execution_success stamps."""
    stamps = {event: data.get("timestamp") for event, data in history.get("status", {}).get("messages", [])}
    if stamps.get("execution_start") and stamps.get("execution_success"):
        return round((stamps["execution_success"] - stamps["execution_start"]) / 1000, 3)
    return None


def output_bytes(client: ComfyClient, job, history: dict, models_dir: str | None) -> bytes:
    """The bytes of the job's output: the saved embedding (from the server's models folder) or the first video."""
    outputs = history.get("outputs", {}).values()
    if job.kind == "learn":
        saved = [t[len("saved "):] for out in outputs for t in out.get("text", []) if t.startswith("saved ")]
        if not saved:
            raise ApiError("the run finished without saving an embedding")
        with open(os.path.join(models_dir, "motion_embeddings", saved[0]), "rb") as f:
            return f.read()
    videos = [f for out in outputs for f in out.get("images", []) if f["filename"].endswith((".mp4", ".webm"))]
    if not videos:
        raise ApiError("the run finished without a video")
    return client.fetch(videos[0])

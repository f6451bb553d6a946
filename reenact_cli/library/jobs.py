"""Jobs: a reference video to learn, or a (motion, image) pair to apply. A job's id is a hash of its inputs' bytes and
of the settings that define its result, so the same work always has the same id, in any run, on any machine."""
import glob
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from reenact_core.file_writes import place_bytes

VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".mkv", ".avi", ".gif")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


@dataclass
class Job:
    kind: str                   # "learn" or "apply"
    inputs: dict                # learn: {"reference": path}; apply: {"motion": learn job id, "image": path}
    settings: dict              # what decides the result (steps, seed, size, frames, model ...)
    id: str = ""
    problem: str | None = None  # set when the inputs cannot be used: the job fails before any server time

    def as_record(self) -> dict:
        return asdict(self)


def file_digest(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def job_id(kind: str, digests: list[str], settings: dict) -> str:
    payload = json.dumps({"kind": kind, "inputs": digests, "settings": settings}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def expand_paths(items: list[str], suffixes: tuple) -> list[str]:
    """Files from a mix of files, folders (their files with `suffixes`, sorted) and glob patterns; each once."""
    found = []
    for item in items:
        if os.path.isdir(item):
            found += sorted(os.path.join(item, n) for n in os.listdir(item) if n.lower().endswith(suffixes))
        elif any(c in item for c in "*?["):
            found += sorted(glob.glob(item))
        else:
            found.append(item)
    seen, out = set(), []
    for path in map(os.path.abspath, found):
        if path not in seen:
            seen.add(path)
            out.append(path)
    return out


def video_problem(path: str, frames: int) -> str | None:
    """Why `path` cannot give `frames` frames, from its headers (PyAV); None when it can."""
    import av
    if not os.path.isfile(path):
        return f"expected a video file, got {path!r}, which does not exist"
    try:
        with av.open(path) as container:
            streams = container.streams.video
            if not streams:
                return f"expected a video stream in {path}, got none"
            count = streams[0].frames
            if count == 0:
                count = sum(1 for _ in container.decode(video=0))
    except (av.FFmpegError, OSError, ValueError) as e:
        return f"expected a readable video, got {path} that PyAV cannot open ({e})"
    if count < frames:
        return f"expected at least {frames} frames in {path}, got {count}"
    return None


def image_problem(path: str) -> str | None:
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path) as image:
            image.verify()
    except (OSError, UnidentifiedImageError) as e:
        return f"expected a readable image, got {path} ({e})"
    return None


def learn_jobs(references: list[str], settings: dict) -> list[Job]:
    jobs = []
    for path in references:
        problem = video_problem(path, settings["frames"])
        digest = file_digest(path) if os.path.isfile(path) else f"missing:{path}"
        jobs.append(Job("learn", {"reference": path}, settings, job_id("learn", [digest], settings), problem))
    return jobs


def apply_jobs(motions: dict, images: list[str], settings: dict, pairing: str) -> list[Job]:
    """motions: {learn job id: embedding file}. pairing "all": every motion on every image; "zip": in order."""
    if pairing == "zip" and len(motions) != len(images):
        raise ValueError(f"expected as many images as motions to zip, got {len(images)} images for "
                         f"{len(motions)} motions")
    pairs = (list(zip(motions, images)) if pairing == "zip"
             else [(m, image) for m in motions for image in images])
    jobs = []
    for motion, image in pairs:
        problem = image_problem(image) if os.path.isfile(image) else f"expected an image file, got {image!r}"
        digests = [file_digest(motions[motion]), file_digest(image) if problem is None else f"missing:{image}"]
        jobs.append(Job("apply", {"motion": motion, "image": image}, settings,
                        job_id("apply", digests, settings), problem))
    return jobs


@dataclass
class Outcome:
    """What one attempt of a job on one server gave."""
    ok: bool
    reason: str = ""            # on failure: why, in a line
    retry: bool = True          # False when trying elsewhere cannot help
    server_down: bool = False   # nothing listens at the server's address: give it no more jobs
    stalled: bool = False       # the server stopped answering in time: it rests until it answers again
    prompt_id: str = ""         # the prompt a stalled server may still hold
    data: bytes | None = None   # on success, where the attempt ran: the output's bytes, for the driver to store
    output: str = ""            # on success, in the driver: the file written into the library
    seconds: dict = field(default_factory=dict)


def job_files(job, library: str) -> dict:
    """The bytes an attempt needs, read in the driver (an attempt may run on another machine): learn, the reference
    video; apply, the image and the learned motion."""
    if job.kind == "learn":
        return {"reference": Path(job.inputs["reference"]).read_bytes()}
    return {"image": Path(job.inputs["image"]).read_bytes(),
            "embedding": Path(library, "embeddings", f"{job.inputs['motion']}.safetensors").read_bytes()}


def store_output(library: str, job, data: bytes) -> str:
    """An attempt's output into the library: embeddings/<job id>.safetensors or videos/<job id>.mp4, whole or not at
    all; a file already there is another attempt's output of the same job (the id is a hash of its inputs)."""
    folder, suffix = ("embeddings", ".safetensors") if job.kind == "learn" else ("videos", ".mp4")
    path = os.path.join(library, folder, f"{job.id}{suffix}")
    place_bytes(path, data)
    return path

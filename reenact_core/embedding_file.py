"""Motion embeddings on disk: .safetensors with our metadata; never pickles, never an overwrite."""
import json
import os
import re

import safetensors
import safetensors.torch

from .errors import ReenactError
from .motion_embedding import MotionEmbedding

FORMAT_NAME = "reenact-anything/motion-embedding"
FORMAT_VERSION = 1
# A run checkpoint (run_checkpoints.py) holds the same tokens tensor and shape metadata, so an
# intermediate checkpoint loads as an embedding too.
RUN_CHECKPOINT_FORMAT = "reenact-anything/run-checkpoint"
TENSOR_KEY = "motion_tokens"
PICKLE_EXTENSIONS = (".pt", ".pth", ".ckpt", ".bin", ".pkl")
TEXT_FIELDS = {"source_video", "base_model", "init"}
SHAPE_FIELDS = ("frames", "tokens", "dim")   # written from the tensor for readers of the file; not kept on load


def _metadata_strings(embedding: MotionEmbedding) -> dict:
    meta = {k: v for k, v in embedding.metadata.items() if v is not None}
    meta.update(zip(SHAPE_FIELDS, (embedding.frames, embedding.tokens_per_frame, embedding.dim)))
    out = {k: v if k in TEXT_FIELDS else json.dumps(v) for k, v in meta.items()}
    out.update({"format": FORMAT_NAME, "format_version": str(FORMAT_VERSION)})
    return out


def _parse_value(key: str, text: str):
    """Names stay text even when they look like numbers; everything else was written as JSON."""
    if key in TEXT_FIELDS:
        return text
    try:
        return json.loads(text)
    except (json.JSONDecodeError, ValueError):
        return text


def prefix_problem(prefix: str) -> str | None:
    """A save prefix may name subfolders, but never climb out of the embeddings folder."""
    cleaned = prefix.replace("\\", "/").strip()
    parts = cleaned.split("/")
    if not cleaned or os.path.isabs(cleaned) or re.match(r"^[A-Za-z]:", cleaned) or ".." in parts:
        return (f"expected a file name prefix inside the motion_embeddings folder (like 'motion/wave'), "
                f"got {prefix!r}")
    if any(p == "" for p in parts[:-1]) or parts[-1] in ("", "."):
        return f"expected a file name prefix like 'motion/wave', got {prefix!r}"
    return None


def safe_prefix(prefix: str) -> str:
    if problem := prefix_problem(prefix):
        raise ReenactError(problem)
    return prefix.replace("\\", "/").strip()


def next_free_path(folder: str, prefix: str) -> str:
    """folder/prefix_00001.safetensors with the next unused counter, reserved atomically."""
    prefix = safe_prefix(prefix)
    target_dir = os.path.dirname(os.path.join(folder, prefix))
    base = os.path.basename(prefix)
    os.makedirs(target_dir, exist_ok=True)
    pattern = re.compile(re.escape(base) + r"_(\d{5})\.safetensors$")
    counters = [int(m.group(1)) for f in os.listdir(target_dir) if (m := pattern.match(f))]
    counter = max(counters, default=0) + 1
    while True:
        path = os.path.join(target_dir, f"{base}_{counter:05}.safetensors")
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            return path
        except FileExistsError:
            counter += 1


def save_embedding(embedding: MotionEmbedding, folder: str, prefix: str) -> str:
    """Write to a fresh counter-suffixed file and return its path; existing files are never touched."""
    path = next_free_path(folder, prefix)
    write_reserved(path, {TENSOR_KEY: embedding.tokens.detach().float().cpu().contiguous()},
                   _metadata_strings(embedding))
    return path


def write_reserved(path: str, tensors: dict, metadata: dict) -> None:
    """Fill a file this run reserved (created empty, O_EXCL) through a temporary file, so a crash or
    Cancel mid-write leaves neither a half-written file nor the empty reservation behind."""
    tmp = path + ".tmp"
    try:
        safetensors.torch.save_file(tensors, tmp, metadata=metadata)
        os.replace(tmp, path)
    except BaseException:
        for leftover in (tmp, path):
            if os.path.exists(leftover):
                os.remove(leftover)
        raise


def load_embedding(path: str) -> MotionEmbedding:
    name = os.path.basename(path)
    if name.lower().endswith(PICKLE_EXTENSIONS):
        raise ReenactError(f"expected a .safetensors motion embedding, got {name}: pickle formats "
                           f"(.pt, .ckpt, ...) can run code when loaded and are refused")
    if not name.lower().endswith(".safetensors"):
        raise ReenactError(f"expected a .safetensors motion embedding, got {name}")
    try:
        with safetensors.safe_open(path, framework="pt") as f:
            metadata = f.metadata() or {}
            keys = list(f.keys())
            if metadata.get("format") not in (FORMAT_NAME, RUN_CHECKPOINT_FORMAT):
                raise ReenactError(f"expected a Reenact Anything motion embedding, got {name}, a .safetensors "
                                   f"file without our metadata (tensors: {', '.join(keys[:3])}"
                                   f"{', ...' if len(keys) > 3 else ''}); is it a LoRA or a checkpoint?")
            if TENSOR_KEY not in keys:
                raise ReenactError(f"expected a '{TENSOR_KEY}' tensor in {name}, got {keys}")
            tokens = f.get_tensor(TENSOR_KEY).float()
    except ReenactError:
        raise
    except Exception as e:  # safetensors raises its own error types for truncated or garbage files
        raise ReenactError(f"expected a readable .safetensors motion embedding, {name} is truncated or "
                           f"corrupt ({type(e).__name__}: {e})") from e
    version = int(metadata.get("format_version", "0"))
    if version > FORMAT_VERSION:
        raise ReenactError(f"expected a motion embedding of format version <= {FORMAT_VERSION}, {name} has "
                           f"version {version}: update the Reenact Anything nodes")
    fields = {k: _parse_value(k, v) for k, v in metadata.items() if k not in ("format", "format_version")}
    declared = tuple(fields.pop(k, None) for k in SHAPE_FIELDS)
    embedding = MotionEmbedding(tokens, fields)
    if declared != (embedding.frames, embedding.tokens_per_frame, embedding.dim):
        raise ReenactError(f"expected the tensor in {name} to match its metadata (frames, tokens, dim) = "
                           f"{declared}, got {tuple(embedding.tokens.shape)}")
    return embedding

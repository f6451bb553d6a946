"""Motion embeddings on disk: .safetensors with our metadata; never pickles, never an overwrite."""
import json
import os
import re

from .errors import ReenactError
from .motion_embedding import MotionEmbedding
from .file_writes import create_empty, reserve_numbered
from .safe_files import read_safetensors, write_reserved

FORMAT_NAME = "reenact-anything/motion-embedding"
FORMAT_VERSION = 1
# A run checkpoint (run_checkpoints.py) holds the same tokens tensor and shape metadata, so an
# intermediate checkpoint loads as an embedding too.
RUN_CHECKPOINT_FORMAT = "reenact-anything/run-checkpoint"
TENSOR_KEY = "motion_tokens"
REFERENCE_IMAGE_KEY = "reference_image_embed"  # optional: the reference's first-frame CLIP image embedding (D,)
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
    return reserve_numbered(os.path.dirname(os.path.join(folder, prefix)), os.path.basename(prefix),
                            ".safetensors", create_empty)


def save_embedding(embedding: MotionEmbedding, folder: str, prefix: str) -> str:
    """Write to a fresh counter-suffixed file and return its path; existing files are never touched."""
    path = next_free_path(folder, prefix)
    tensors = {TENSOR_KEY: embedding.tokens.detach().float().cpu().contiguous()}
    if embedding.reference_image is not None:
        tensors[REFERENCE_IMAGE_KEY] = embedding.reference_image.detach().float().cpu().contiguous()
    write_reserved(path, tensors, _metadata_strings(embedding))
    return path


def _not_an_embedding(name, metadata, keys) -> str:
    return (f"expected a Reenact Anything motion embedding, got {name}, a .safetensors file without our metadata "
            f"(tensors: {', '.join(keys[:3])}{', ...' if len(keys) > 3 else ''}); is it a LoRA or a checkpoint?")


def load_embedding(path: str) -> MotionEmbedding:
    name = os.path.basename(path)
    metadata, tensors = read_safetensors(path, "motion embedding", (FORMAT_NAME, RUN_CHECKPOINT_FORMAT),
                                         FORMAT_VERSION, _not_an_embedding)
    if TENSOR_KEY not in tensors:
        raise ReenactError(f"expected a '{TENSOR_KEY}' tensor in {name}, got {list(tensors)}")
    tokens = tensors[TENSOR_KEY].float()
    fields = {k: _parse_value(k, v) for k, v in metadata.items() if k not in ("format", "format_version")}
    declared = tuple(fields.pop(k, None) for k in SHAPE_FIELDS)
    reference_image = tensors[REFERENCE_IMAGE_KEY].float() if REFERENCE_IMAGE_KEY in tensors else None
    embedding = MotionEmbedding(tokens, fields, reference_image)
    if declared != (embedding.frames, embedding.tokens_per_frame, embedding.dim):
        raise ReenactError(f"expected the tensor in {name} to match its metadata (frames, tokens, dim) = "
                           f"{declared}, got {tuple(embedding.tokens.shape)}")
    return embedding

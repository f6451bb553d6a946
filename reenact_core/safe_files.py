"""The pack's safetensors files: written whole (file_writes), read with the refusals they need, and short
fingerprints.

Motion embeddings (embedding_file.py) and run checkpoints (run_checkpoints.py) both use these, so a refusal
or a naming rule is written once.
"""
import hashlib
import os

import safetensors
import safetensors.torch

from .errors import ReenactError
from .file_writes import fill_reserved

PICKLE_EXTENSIONS = (".pt", ".pth", ".ckpt", ".bin", ".pkl")


def write_reserved(path: str, tensors: dict, metadata: dict) -> None:
    """A reserved .safetensors file, written through fill_reserved."""
    fill_reserved(path, lambda tmp: safetensors.torch.save_file(tensors, tmp, metadata=metadata))


def read_safetensors(path: str, what: str, formats: tuple, max_version: int, wrong_format=None):
    """(metadata, tensors) of one of our .safetensors files, or a ReenactError that says why not.

    Refused: pickle formats (they can run code when loaded), other extensions, a missing file, a file whose
    metadata 'format' is not one of `formats` (`wrong_format(name, metadata, keys)` may word that message),
    a truncated or corrupt file, and a format version newer than this code reads.
    """
    name = os.path.basename(path)
    if name.lower().endswith(PICKLE_EXTENSIONS):
        raise ReenactError(f"expected a .safetensors {what}, got {name}: pickle formats (.pt, .ckpt, ...) can run "
                           f"code when loaded and are refused")
    if not name.lower().endswith(".safetensors"):
        raise ReenactError(f"expected a .safetensors {what}, got {name}")
    if not os.path.isfile(path):
        raise ReenactError(f"expected a {what} file, got a path that does not exist: {path}")
    try:
        with safetensors.safe_open(path, framework="pt") as f:
            metadata = f.metadata() or {}
            keys = list(f.keys())
            if metadata.get("format") not in formats:
                raise ReenactError(wrong_format(name, metadata, keys) if wrong_format else
                                   f"expected a Reenact Anything {what}, got {name} with format "
                                   f"{metadata.get('format', 'none')!r}")
            tensors = {k: f.get_tensor(k) for k in keys}
    except ReenactError:
        raise
    except Exception as e:  # safetensors raises its own error types for truncated or garbage files
        raise ReenactError(f"expected a readable .safetensors {what}, {name} is truncated or corrupt "
                           f"({type(e).__name__}: {e})") from e
    version = int(metadata.get("format_version", "0"))
    if version > max_version:
        raise ReenactError(f"expected a {what} of format version <= {max_version}, {name} has version {version}: "
                           f"update the Reenact Anything nodes")
    return metadata, tensors


def short_fingerprint(data: bytes) -> str:
    """12 hex digits of sha256: tells models and reference videos apart in checkpoints, without keeping them."""
    return hashlib.sha256(data).hexdigest()[:12]

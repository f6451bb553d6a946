"""The pack's files on disk, one helper per job: numbered names that never overwrite, writes that never leave
half a file, a safetensors reader that refuses what it should, and short fingerprints.

Motion embeddings (embedding_file.py) and run checkpoints (run_checkpoints.py) both use these, so a refusal
or a naming rule is written once.
"""
import hashlib
import os
import re

import safetensors
import safetensors.torch

from .errors import ReenactError

PICKLE_EXTENSIONS = (".pt", ".pth", ".ckpt", ".bin", ".pkl")


def reserve_numbered(parent: str, base: str, suffix: str, make) -> str:
    """parent/base_NNNNN<suffix> with the next unused counter, created by `make(path)`, which must raise
    FileExistsError when the name is taken (os.mkdir, or an O_EXCL open): two runs never share a name."""
    os.makedirs(parent, exist_ok=True)
    pattern = re.compile(re.escape(base) + r"_(\d{5})" + re.escape(suffix) + "$")
    counter = 1 + max((int(m.group(1)) for f in os.listdir(parent) if (m := pattern.match(f))), default=0)
    while True:
        path = os.path.join(parent, f"{base}_{counter:05}{suffix}")
        try:
            make(path)
            return path
        except FileExistsError:
            counter += 1


def create_empty(path: str) -> None:
    """Reserve a file name: created empty, refused (FileExistsError) if anything is there."""
    os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))


def fill_reserved(path: str, write) -> None:
    """Fill a file this run reserved (create_empty) by `write(temporary path)`, so a crash or Cancel mid-write
    leaves neither a half-written file nor the empty reservation behind."""
    tmp = path + ".tmp"
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        for leftover in (tmp, path):
            if os.path.exists(leftover):
                os.remove(leftover)
        raise


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

"""Writing files so that nothing is lost: each write goes to a temporary name of its own (unique per attempt, in the
destination's folder), and only a whole file takes its name. No torch here: the command-line tools use it too.

- place_new: a file that never replaces another (the library's outputs, a server's copy of an embedding);
- replace_whole: a file of our own that a new version replaces (the library's contact sheet);
- reserve_numbered + create_empty + fill_reserved: a fresh numbered name, reserved first, filled after (saved
  embeddings, run checkpoints, copies the main command gives a server).
"""
import os
import re
import tempfile
from pathlib import Path


def _written(destination: str, write) -> str:
    """`write(path)` at a new temporary path beside `destination`, unique to this call; the path, or the error with
    the temporary file removed."""
    folder = os.path.dirname(os.path.abspath(destination))
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(destination)}.", suffix=".partial", dir=folder)
    os.close(handle)
    try:
        write(temporary)
    except BaseException:
        os.remove(temporary)
        raise
    return temporary


def place_new(destination: str, write) -> bool:
    """Make `destination` by `write(path)`, whole or not at all, never over an existing file (os.link refuses it).
    False when a file was already there: left as it is (for the library, another attempt's output of the same job,
    the same bytes)."""
    temporary = _written(destination, write)
    try:
        os.link(temporary, destination)
        return True
    except FileExistsError:
        return False
    finally:
        os.remove(temporary)


def place_bytes(destination: str, data: bytes) -> bool:
    """place_new with these bytes."""
    return place_new(destination, lambda path: Path(path).write_bytes(data))


def replace_whole(destination: str, write) -> str:
    """Make or replace `destination` (a file of our own) by `write(path)`: readers see the old or the new file."""
    temporary = _written(destination, write)
    os.replace(temporary, destination)
    return destination


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
    try:
        replace_whole(path, write)
    except BaseException:
        if os.path.exists(path):
            os.remove(path)
        raise

"""Where run checkpoints are and what they are called, with no torch and no ComfyUI: the library command reads them
from outside ComfyUI to resume a job on another server."""
import os
import re

CHECKPOINTS_SUBFOLDER = "checkpoints"
STEP_FILE = re.compile(r"step_(\d{6,})\.safetensors$")


def list_checkpoints(embeddings_folder: str) -> list[str]:
    """Run checkpoint files under checkpoints/, relative to the embeddings folder, '/'-separated, sorted.

    An empty step file is a name reserved by a run killed before it wrote the checkpoint (the writer reserves the
    name, then replaces it whole): it is no checkpoint, and is not listed."""
    root = os.path.join(embeddings_folder, CHECKPOINTS_SUBFOLDER)
    found = []
    for folder, _, files in os.walk(root):
        for f in files:
            if STEP_FILE.match(f) and os.path.getsize(os.path.join(folder, f)) > 0:
                found.append(os.path.relpath(os.path.join(folder, f), embeddings_folder).replace(os.sep, "/"))
    return sorted(found)

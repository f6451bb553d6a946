"""Reenact Anything: motion-textual inversion for Stable Video Diffusion, as ComfyUI nodes."""
import os

import folder_paths
from comfy_api.latest import ComfyExtension, io

from .nodes import NODE_LIST
from .nodes.common import EMBEDDINGS_FOLDER
from .reenact_core.safe_files import PICKLE_EXTENSIONS

WEB_DIRECTORY = "./web"


def register_model_folder():
    """models/motion_embeddings, listing .safetensors and the pickles we refuse with a message."""
    folder_paths.add_model_folder_path(EMBEDDINGS_FOLDER, os.path.join(folder_paths.models_dir, EMBEDDINGS_FOLDER))
    extensions = folder_paths.folder_names_and_paths[EMBEDDINGS_FOLDER][1]
    extensions.update({".safetensors", *PICKLE_EXTENSIONS})


register_model_folder()


class ReenactAnythingExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return NODE_LIST


async def comfy_entrypoint() -> ReenactAnythingExtension:
    return ReenactAnythingExtension()

import os

import folder_paths
from comfy_api.latest import io

from ..reenact_core.embedding_file import load_embedding, prefix_problem, save_embedding
from .common import CATEGORY, EMBEDDINGS_FOLDER, MotionEmbeddingType
from .schema_features import search_aliases


class SaveMotionEmbedding(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="SaveMotionEmbedding",
            display_name="Save Motion Embedding",
            category=CATEGORY,
            description="Saves to models/motion_embeddings as .safetensors with metadata. A counter is added "
                        "to the name, so no file is ever overwritten.",
            **search_aliases("save motion", "motion lora", "reenact", "reenact anything"),
            inputs=[
                MotionEmbeddingType.Input("motion_embedding"),
                io.String.Input("filename_prefix", default="motion/reenact",
                                tooltip="Subfolders allowed; '..' and absolute paths are refused."),
            ],
            outputs=[io.String.Output("path")],
            is_output_node=True,
        )

    @classmethod
    def validate_inputs(cls, filename_prefix):
        """Checked before the run, so a long optimisation never ends in a refused save."""
        return (prefix_problem(filename_prefix) if filename_prefix is not None else None) or True

    @classmethod
    def execute(cls, motion_embedding, filename_prefix) -> io.NodeOutput:
        folder = folder_paths.get_folder_paths(EMBEDDINGS_FOLDER)[0]
        path = save_embedding(motion_embedding, folder, filename_prefix)
        name = os.path.relpath(path, folder)
        return io.NodeOutput(path, ui={"text": [f"saved {name}"]})


class LoadMotionEmbedding(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="LoadMotionEmbedding",
            display_name="Load Motion Embedding",
            category=CATEGORY,
            description="Loads a motion embedding from models/motion_embeddings. Pickle files are refused.",
            **search_aliases("load motion", "motion lora", "motion transfer", "reenact", "reenact anything"),
            inputs=[io.Combo.Input("embedding_name", options=folder_paths.get_filename_list(EMBEDDINGS_FOLDER))],
            outputs=[MotionEmbeddingType.Output("motion_embedding"), io.String.Output("info")],
        )

    @classmethod
    def validate_inputs(cls, embedding_name):
        if folder_paths.get_full_path(EMBEDDINGS_FOLDER, embedding_name) is None:
            return (f"expected embedding_name to be a file in models/{EMBEDDINGS_FOLDER}, got {embedding_name!r}, "
                    "which is not there")
        return True

    @classmethod
    def fingerprint_inputs(cls, embedding_name):
        path = folder_paths.get_full_path(EMBEDDINGS_FOLDER, embedding_name)
        return os.path.getmtime(path) if path else embedding_name

    @classmethod
    def execute(cls, embedding_name) -> io.NodeOutput:
        embedding = load_embedding(folder_paths.get_full_path_or_raise(EMBEDDINGS_FOLDER, embedding_name))
        shape = f"frames={embedding.frames}, tokens={embedding.tokens_per_frame}, dim={embedding.dim}"
        info = ", ".join([shape, *(f"{k}={v}" for k, v in sorted(embedding.metadata.items()))])
        return io.NodeOutput(embedding, info)

from comfy_api.latest import io

from ..reenact_core.clip_init import encode_frames, inflate
from ..reenact_core.motion_embedding import MotionEmbedding
from .common import CATEGORY, MotionEmbeddingType
from .schema_features import advanced, search_aliases
from .validation import declared_problem, first_problem


class InflateCLIPEmbedding(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="InflateCLIPEmbedding",
            display_name="Inflate CLIP Embedding",
            category=CATEGORY,
            description="Builds the starting motion embedding: each frame's CLIP image embedding, copied to "
                        "N tokens with a little seeded noise, plus one temporal slot.",
            **search_aliases("motion inversion", "init motion embedding", "reenact", "reenact anything"),
            inputs=[
                io.ClipVision.Input("clip_vision", tooltip="The CLIP vision model from the SVD checkpoint."),
                io.Image.Input("images", tooltip="Reference frames, or a single image."),
                io.Int.Input("tokens_per_frame", default=5, min=1, max=77,
                             tooltip="N tokens per frame. The paper found 5 about as good as 15."),
                io.Float.Input("init_noise", default=0.1, min=0.0, max=10.0, step=0.01,
                               tooltip="Noise added to the copies, in units of the embeddings' std.",
                               **advanced(io.Float)),
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=True),
                io.Int.Input("frames_if_single_image", default=14, min=1, max=128,
                             tooltip="Frame slots to make when 'images' holds one image."),
            ],
            outputs=[MotionEmbeddingType.Output("motion_embedding")],
        )

    @classmethod
    def validate_inputs(cls, init_noise):
        return first_problem(declared_problem(cls, init_noise=init_noise))

    @classmethod
    def execute(cls, clip_vision, images, tokens_per_frame, init_noise, seed,
                frames_if_single_image) -> io.NodeOutput:
        frames = images.shape[0] if images.shape[0] > 1 else frames_if_single_image
        embeds = encode_frames(clip_vision, images)
        tokens = inflate(embeds, frames, tokens_per_frame, init_noise, seed)
        return io.NodeOutput(MotionEmbedding(tokens, {"steps": 0, "init": "clip", "init_seed": seed},
                                             reference_image=embeds[0]))

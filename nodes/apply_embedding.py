from comfy_api.latest import io

from ..reenact_core.errors import ReenactError
from ..reenact_core.motion_conditioning import APPEARANCES, SWAP_LOOK, Look, positive_and_negative
from .common import CATEGORY, MotionEmbeddingType
from .schema_features import search_aliases
from .validation import declared_problem, first_problem


def look_of(embedding, appearance: str) -> Look | None:
    """How the conditioning handles the reference's look: the swap asked for, and the slot the embedding was learned
    with (its metadata says); both need the reference's image embedding from the motion file."""
    swap, slot = appearance == SWAP_LOOK, bool(embedding.metadata.get("appearance_slot"))
    if not (swap or slot):
        return None
    if embedding.reference_image is None:
        raise ReenactError(f"expected a motion embedding that keeps its reference's image embedding for appearance "
                           f"'{appearance}', got one made before it was kept (source: "
                           f"{embedding.metadata.get('source_video', 'not named')}); learn it again from Inflate CLIP "
                           f"Embedding, or set appearance to '{APPEARANCES[0]}'")
    return Look(embedding.reference_image, swap=swap, slot=slot)


class ApplyMotionEmbedding(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ApplyMotionEmbedding",
            display_name="Apply Motion Embedding",
            category=CATEGORY,
            description="Puts a motion embedding into SVD conditioning: frame f's tokens go to frame f, the "
                        "temporal slot to the temporal blocks. Use with ComfyUI's own KSampler.",
            **search_aliases("motion transfer", "transfer motion", "reenact", "reenact anything", "motion lora",
                             "motion embedding"),
            inputs=[
                io.Conditioning.Input("positive", tooltip="From SVD_img2vid_Conditioning."),
                io.Conditioning.Input("negative", tooltip="From SVD_img2vid_Conditioning."),
                MotionEmbeddingType.Input("motion_embedding"),
                io.Latent.Input("latent", tooltip="The video latent you will sample; its frame count decides "
                                "how the motion is resampled over time."),
                io.Float.Input("strength", default=1.0, min=0.0, max=2.0, step=0.05,
                               tooltip="0 gives plain SVD, 1 the learned motion, above 1 exaggerates it."),
                io.Boolean.Input("use_embedding_fps_and_bucket", default=True,
                                 tooltip="Condition on the fps and motion bucket the embedding was trained "
                                         "with, instead of the ones set in SVD_img2vid_Conditioning."),
                io.Combo.Input("appearance", options=list(APPEARANCES), default=APPEARANCES[0], optional=True,
                               tooltip="swap to the target's: put the target's look (its image embedding, from "
                                       "the conditioning) in the reference's place (kept in the motion file): in "
                                       "the appearance slot of an embedding learned with one, else added to every "
                                       "motion token as the target's minus the reference's. Needs an embedding "
                                       "made by this version's Inflate CLIP Embedding. When it helps: the README, "
                                       "\"Motion that stays with the reference's look\"."),
            ],
            outputs=[io.Conditioning.Output("positive_out", display_name="positive"),
                     io.Conditioning.Output("negative_out", display_name="negative")],
        )

    @classmethod
    def validate_inputs(cls, strength, appearance=None):
        return first_problem(declared_problem(cls, strength=strength, appearance=appearance))

    @classmethod
    def execute(cls, positive, negative, motion_embedding, latent, strength,
                use_embedding_fps_and_bucket, appearance=APPEARANCES[0]) -> io.NodeOutput:
        samples = latent["samples"]
        if samples.ndim != 4:
            raise ReenactError(f"expected an SVD video latent (frames, 4, h, w), got shape {tuple(samples.shape)}")
        overrides = {}
        if use_embedding_fps_and_bucket:
            meta = motion_embedding.metadata
            overrides = {k: int(meta[k]) for k in ("fps", "motion_bucket_id") if k in meta}
        pos, neg = positive_and_negative(positive, negative, motion_embedding.tokens, samples.shape[0],
                                         strength, overrides, look_of(motion_embedding, appearance))
        return io.NodeOutput(pos, neg)

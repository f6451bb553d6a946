"""Thin V3 nodes: validate inputs, call reenact_core, wrap the result."""
from .apply_embedding import ApplyMotionEmbedding
from .save_load_embedding import LoadMotionEmbedding, SaveMotionEmbedding
from .inflate_clip import InflateCLIPEmbedding
from .load_reference import LoadMotionReference
from .optimize import OptimizeMotionEmbedding

NODE_LIST = [LoadMotionReference, InflateCLIPEmbedding, OptimizeMotionEmbedding, ApplyMotionEmbedding,
             SaveMotionEmbedding, LoadMotionEmbedding]

"""Node inputs for tests: what a fresh node on the canvas would send (its schema's defaults), with cheap changes."""
from reenact_cli.workflow_api import fresh_node_inputs


def widget_defaults(node_id: str) -> dict:
    """A registered node's widget values as a fresh node on the canvas has them (the CLI's reading of a node
    definition, applied to the class's INPUT_TYPES)."""
    import nodes as comfy_nodes  # ComfyUI's, importable once a ComfyUI is set up
    return fresh_node_inputs({"input": comfy_nodes.NODE_CLASS_MAPPINGS[node_id].INPUT_TYPES()})


def optimize_inputs(**overrides) -> dict:
    """Optimize Motion Embedding's inputs as a fresh node has them, but 2 steps without checkpointing; pass model,
    vae, reference, init_embedding and whatever else differs."""
    return {**widget_defaults("OptimizeMotionEmbedding"), "steps": 2, "gradient_checkpointing": "off", **overrides}


# Load Motion Reference's inputs for a 4-frame 64x64 read; add video (and video_input) and whatever else differs.
LOAD_REFERENCE_INPUTS = dict(start_frame=0, frame_count=4, stride=1, target_fps=0.0, width=64, height=64,
                             resize_mode="crop")

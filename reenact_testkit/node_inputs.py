"""Node inputs for tests: what a fresh node on the canvas would send (its schema's defaults), with cheap changes."""
import nodes as comfy_nodes


def widget_defaults(node_id: str) -> dict:
    """Every input of a registered node that has a default, at that default (ComfyUI's classic INPUT_TYPES view)."""
    declared = comfy_nodes.NODE_CLASS_MAPPINGS[node_id].INPUT_TYPES()
    return {name: spec[1]["default"] for group in ("required", "optional")
            for name, spec in declared.get(group, {}).items()
            if len(spec) > 1 and isinstance(spec[1], dict) and "default" in spec[1]}


def optimize_inputs(**overrides) -> dict:
    """Optimize Motion Embedding's inputs as a fresh node has them, but 2 steps without checkpointing; pass model,
    vae, reference, init_embedding and whatever else differs."""
    return {**widget_defaults("OptimizeMotionEmbedding"), "steps": 2, "gradient_checkpointing": "off", **overrides}


# Load Motion Reference's inputs for a 4-frame 64x64 read; add video (and video_input) and whatever else differs.
LOAD_REFERENCE_INPUTS = dict(start_frame=0, frame_count=4, stride=1, target_fps=0.0, width=64, height=64,
                             resize_mode="crop")

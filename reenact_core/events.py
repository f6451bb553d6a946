"""Names of the custom websocket events the pack sends. Kept free of ComfyUI imports so that the nodes, the
terminal client (reenact_cli) and the tests can all read the one spelling.

web/js cannot import Python: loss_curve.js keeps its own copy of LOSS_EVENT and motion_preview.js of
PREVIEW_EVENT; tests/test_pack_loading.py checks that the spellings agree.
"""

# {node: unique_id ("12" or "12:5" inside a subgraph), prompt_id, total, reset, points: [[step, loss|None], ...]}
LOSS_EVENT = "reenact_anything.loss"

# {node, prompt_id, step, total, image: {filename, subfolder, type: "temp"}}: an animated WEBP preview of the motion
# at `step`, in ComfyUI's temp folder (served by /view), sent by nodes/live_events.py.
PREVIEW_EVENT = "reenact_anything.preview"

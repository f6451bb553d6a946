"""Names of the custom websocket events the pack sends. Kept free of ComfyUI imports so that the nodes, the
terminal client (reenact_cli) and the tests can all read the one spelling.

web/js/loss_curve.js cannot import Python and keeps its own copy of LOSS_EVENT; tests/test_pack_loading.py
checks that the two spellings agree.
"""

# {node: unique_id ("12" or "12:5" inside a subgraph), prompt_id, total, reset, points: [[step, loss|None], ...]}
LOSS_EVENT = "reenact_anything.loss"

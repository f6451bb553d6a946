"""Load this pack into an in-process ComfyUI with ComfyUI's own custom-node loader (tests, benchmarks)."""
import asyncio
import os
import sys
import tempfile

from reenact_cli.locate import PACK_ROOT

PACK_NAME = "reenact-anything"


def load_pack():
    """Link the pack into a temporary custom_nodes folder and load it; returns (module, node ids it added).

    ComfyUI must already be importable (its folder on sys.path, args parsed or parsing disabled).
    """
    import nodes as comfy_nodes
    custom_nodes = tempfile.mkdtemp(prefix="custom_nodes_")
    link = os.path.join(custom_nodes, PACK_NAME)
    os.symlink(PACK_ROOT, link)
    before = set(comfy_nodes.NODE_CLASS_MAPPINGS)
    if not asyncio.run(comfy_nodes.load_custom_node(link)):
        raise RuntimeError("ComfyUI's loader failed to load the pack; see the log above")
    added = set(comfy_nodes.NODE_CLASS_MAPPINGS) - before
    return sys.modules[link.replace(".", "_x_")], added

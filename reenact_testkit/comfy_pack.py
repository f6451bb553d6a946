"""Load this pack into an in-process ComfyUI with ComfyUI's own custom-node loader, and run registered nodes the
way the executor does (tests, benchmarks)."""
import asyncio
import os
import sys
import tempfile

from reenact_cli.locate import PACK_ROOT

PACK_NAME = "reenact-anything"
_LOADED_IDS: set = set()  # the node ids load_pack added


def comfyui_root() -> str:
    """The folder of the ComfyUI this process imported."""
    import folder_paths
    return os.path.dirname(os.path.abspath(folder_paths.__file__))


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
    _LOADED_IDS.update(added)
    return sys.modules[link.replace(".", "_x_")], added


def pack_node_ids() -> set:
    """The node ids load_pack registered in this process."""
    return set(_LOADED_IDS)


def node_class(node_id):
    import nodes as comfy_nodes
    return comfy_nodes.NODE_CLASS_MAPPINGS[node_id]


def run_node(node_id, **inputs):
    """Run a registered node (this pack's or ComfyUI's) the way the executor does: in inference mode, its outputs
    as a tuple. A V3 node (comfy_api's io.ComfyNode) is run through its `execute` classmethod and its NodeOutput's
    `.args` returned; a classic node through its FUNCTION on a fresh instance."""
    import torch
    import nodes as comfy_nodes
    from comfy_api.internal import _ComfyNodeInternal  # what ComfyUI's executor tells V3 nodes apart by
    cls = comfy_nodes.NODE_CLASS_MAPPINGS[node_id]
    with torch.inference_mode():
        if issubclass(cls, _ComfyNodeInternal):
            out = cls.execute(**inputs)
        else:
            out = getattr(cls(), cls.FUNCTION)(**inputs)
    return out.args if hasattr(out, "args") else out

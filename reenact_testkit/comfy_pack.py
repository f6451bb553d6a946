"""Load this pack into an in-process ComfyUI with ComfyUI's own custom-node loader, and run registered nodes the
way the executor does (tests, benchmarks)."""
import asyncio
import importlib
import os
import pkgutil
import sys
import tempfile

from reenact_cli.locate import PACK_ROOT

# The six nodes the pack registers: what the tests expect a server to list (kept apart from the product's own lists,
# so a node dropped from the pack fails a test).
PACK_NODES = {"LoadMotionReference", "InflateCLIPEmbedding", "OptimizeMotionEmbedding", "SaveMotionEmbedding",
              "LoadMotionEmbedding", "ApplyMotionEmbedding"}

PACK_NAME = "reenact-anything"
_LOADED_IDS: set = set()  # the node ids load_pack added


def comfyui_root() -> str:
    """The folder of the ComfyUI this process imported."""
    import folder_paths
    return os.path.dirname(os.path.abspath(folder_paths.__file__))


# The pack's method package: the test kit, the toy, the CLI and the tests import it as `reenact_core`, and get the
# very modules ComfyUI loaded for the nodes.
CORE = "reenact_core"


def load_pack():
    """Link the pack into a temporary custom_nodes folder and load it; returns (module, node ids it added).

    ComfyUI must already be importable (its folder on sys.path, args parsed or parsing disabled). Afterwards
    `import reenact_core...` anywhere in this process gives ComfyUI's loaded modules (share_core), so there is one
    copy of the pack: one ReenactError, one MotionEmbedding, one compile cache.
    """
    import nodes as comfy_nodes
    if CORE in sys.modules:
        raise RuntimeError(f"{CORE} was imported before the pack was loaded, as a second copy: load the pack first")
    custom_nodes = tempfile.mkdtemp(prefix="custom_nodes_")
    link = os.path.join(custom_nodes, PACK_NAME)
    os.symlink(PACK_ROOT, link)
    before = set(comfy_nodes.NODE_CLASS_MAPPINGS)
    if not asyncio.run(comfy_nodes.load_custom_node(link)):
        raise RuntimeError("ComfyUI's loader failed to load the pack; see the log above")
    added = set(comfy_nodes.NODE_CLASS_MAPPINGS) - before
    _LOADED_IDS.update(added)
    module = sys.modules[link.replace(".", "_x_")]
    share_core(module.__name__)
    return module, added


def share_core(pack_module_name: str):
    """Make `reenact_core` and each of its modules the ones ComfyUI loaded under the pack's module name.

    Every module of the package is imported under ComfyUI's name first, so no later `import reenact_core.x` can
    load a file a second time under the short name.
    """
    loaded = importlib.import_module(f"{pack_module_name}.{CORE}")
    sys.modules[CORE] = loaded
    for info in pkgutil.walk_packages(loaded.__path__, prefix=f"{loaded.__name__}."):
        sys.modules[CORE + info.name[len(loaded.__name__):]] = importlib.import_module(info.name)


def modules_loaded_twice() -> dict:
    """{file: [module names]} for every file of the pack that is in sys.modules as more than one module object."""
    by_file: dict = {}
    pack, environment = os.path.realpath(PACK_ROOT) + os.sep, os.path.realpath(sys.prefix) + os.sep
    for name, module in list(sys.modules.items()):
        path = os.path.realpath(getattr(module, "__file__", None) or os.sep)
        if path.startswith(pack) and not path.startswith(environment):  # the tests' venv may sit in the clone
            by_file.setdefault(path, {})[id(module)] = name
    return {path: sorted(names.values()) for path, names in by_file.items() if len(names) > 1}


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

"""The pack loads through ComfyUI's own custom-node loader and registers its nodes and type."""
import pytest

from conftest import PACK_NODE_IDS, node_class

EXPECTED = {"LoadMotionReference", "InflateCLIPEmbedding", "OptimizeMotionEmbedding", "ApplyMotionEmbedding",
            "SaveMotionEmbedding", "LoadMotionEmbedding"}


def test_all_six_nodes_registered():
    assert EXPECTED <= PACK_NODE_IDS


def test_motion_embedding_type_flows_between_nodes():
    """MOTION_EMBEDDING is produced by inflate/optimize/load and consumed by optimize/apply/save."""
    produces, consumes = set(), set()
    for node_id in EXPECTED:
        info = node_class(node_id).GET_NODE_INFO_V1()
        if "MOTION_EMBEDDING" in info["output"]:
            produces.add(node_id)
        for section in ("required", "optional"):
            for spec in info["input"].get(section, {}).values():
                if spec[0] == "MOTION_EMBEDDING":
                    consumes.add(node_id)
    assert produces == {"InflateCLIPEmbedding", "OptimizeMotionEmbedding", "LoadMotionEmbedding"}
    assert consumes == {"OptimizeMotionEmbedding", "ApplyMotionEmbedding", "SaveMotionEmbedding"}


def test_motion_embeddings_folder_registered(pack):
    import folder_paths
    paths, extensions = folder_paths.folder_names_and_paths["motion_embeddings"]
    assert paths and paths[0].endswith("motion_embeddings")
    assert ".safetensors" in extensions


def test_web_directory_declared(pack):
    import os
    assert os.path.isdir(os.path.join(os.path.dirname(pack.__file__), pack.WEB_DIRECTORY))


@pytest.mark.parametrize("script_name,constant", [("loss_curve.js", "LOSS_EVENT"),
                                                   ("motion_preview.js", "PREVIEW_EVENT")])
def test_web_extensions_listen_for_the_python_events(pack, script_name, constant):
    """web/js cannot import reenact_core/events.py: each script's one copy of its event name must match."""
    import os
    import re
    from reenact_core import events
    name = getattr(events, constant)
    with open(os.path.join(os.path.dirname(pack.__file__), pack.WEB_DIRECTORY, "js", script_name)) as f:
        script = f.read()
    assert re.findall(rf'const {constant} = "([^"]*)";', script) == [name]
    assert f"api.addEventListener({constant}, " in script
    assert re.findall(r'"reenact_anything\.[^"]*"', script) == [f'"{name}"'], "one spelling of the name only"

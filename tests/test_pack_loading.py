"""The pack loads through ComfyUI's own custom-node loader and registers its nodes and type."""
import pytest

from reenact_testkit.comfy_pack import node_class, pack_node_ids

pytestmark = pytest.mark.floor

EXPECTED = {"LoadMotionReference", "InflateCLIPEmbedding", "OptimizeMotionEmbedding", "ApplyMotionEmbedding",
            "SaveMotionEmbedding", "LoadMotionEmbedding"}


def test_all_six_nodes_registered():
    assert EXPECTED <= pack_node_ids()


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


# Newer V3 schema fields (nodes/schema_features.py): used where the running ComfyUI has them, absent where not.
ADVANCED = {"OptimizeMotionEmbedding": {"sigma_log_mean", "sigma_log_std", "augmentation_level",
                                        "gradient_checkpointing", "lr_schedule", "warmup_steps", "weight_decay",
                                        "precision", "memory_mode", "compile", "keep_checkpoints", "held_out_every",
                                        "stop_patience", "stop_min_improvement", "augment_copies", "augment_strength",
                                        "augment_changes", "plain_loss_weight", "debiased_loss_weight",
                                        "frame_difference_loss_weight", "appearance_slot"},
            "InflateCLIPEmbedding": {"init_noise"}}
ALIASES = {"LoadMotionReference": "reference video", "InflateCLIPEmbedding": "motion inversion",
           "OptimizeMotionEmbedding": "motion inversion", "ApplyMotionEmbedding": "motion transfer",
           "SaveMotionEmbedding": "motion lora", "LoadMotionEmbedding": "motion lora"}


def comfyui_takes(make) -> bool:
    """Whether this ComfyUI's io classes take an argument, found by calling them (independent of the pack's own
    signature check): an unknown keyword is a TypeError."""
    try:
        make()
        return True
    except TypeError:
        return False


def has_advanced_inputs() -> bool:
    from comfy_api.latest import io
    return comfyui_takes(lambda: (io.Int.Input("x", advanced=True), io.Float.Input("x", advanced=True),
                                  io.Combo.Input("x", options=["a"], advanced=True)))


def has_search_aliases() -> bool:
    from comfy_api.latest import io
    return comfyui_takes(lambda: io.Schema(node_id="x", search_aliases=["y"]))


def advanced_inputs(info: dict) -> set:
    return {name for section in ("required", "optional") for name, spec in info["input"].get(section, {}).items()
            if len(spec) > 1 and spec[1].get("advanced")}


@pytest.mark.parametrize("node_id", sorted(EXPECTED))
def test_advanced_inputs_where_comfyui_has_them(node_id):
    """The expert knobs sit behind the node's advanced toggle on a ComfyUI that has one; elsewhere nothing
    changes (the floor, 0.3.64, would refuse the argument)."""
    expected = ADVANCED.get(node_id, set()) if has_advanced_inputs() else set()
    got = advanced_inputs(node_class(node_id).GET_NODE_INFO_V1())
    assert got == expected, f"expected advanced inputs {sorted(expected)}, got {sorted(got)}"


@pytest.mark.parametrize("node_id", sorted(EXPECTED))
def test_search_aliases_where_comfyui_has_them(node_id):
    info = node_class(node_id).GET_NODE_INFO_V1()
    if has_search_aliases():
        aliases = info.get("search_aliases") or []
        expected = {"reenact", ALIASES[node_id]}
        assert expected <= set(aliases), f"expected {sorted(expected)} among the search aliases, got {aliases}"
    else:
        assert not info.get("search_aliases"), f"expected no search aliases, got {info.get('search_aliases')}"


@pytest.mark.full
def test_a_running_comfyui_serves_the_new_fields_in_object_info(comfy_server):
    """What the browser reads: /object_info from a real `main.py` with the pack installed."""
    _, client = comfy_server
    info = client.object_info()
    optimize = info["OptimizeMotionEmbedding"]
    expected = ADVANCED["OptimizeMotionEmbedding"] if has_advanced_inputs() else set()
    got = advanced_inputs(optimize)
    assert got == expected, f"expected advanced inputs {sorted(expected)}, got {sorted(got)}"
    aliases = info["ApplyMotionEmbedding"].get("search_aliases") or []
    where = "among" if has_search_aliases() else "not in"
    assert ("motion transfer" in aliases) == has_search_aliases(), \
        f"expected 'motion transfer' {where} the search aliases, got {aliases}"


def test_the_pack_is_loaded_once(pack):
    """Tests, the test kit and the nodes reach the one copy ComfyUI loaded: each of the pack's files is one module."""
    import sys
    import reenact_core.inversion
    from reenact_testkit.comfy_pack import modules_loaded_twice
    assert reenact_core.inversion is sys.modules[f"{pack.__name__}.reenact_core.inversion"]
    assert modules_loaded_twice() == {}


def test_loading_a_pack_file_a_second_time_is_caught():
    """The check above can fail: a second module made from one of the pack's files is reported."""
    import importlib.util
    import sys
    from reenact_core import errors
    from reenact_testkit.comfy_pack import modules_loaded_twice
    spec = importlib.util.spec_from_file_location("second_copy_of_errors", errors.__file__)
    sys.modules[spec.name] = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(sys.modules[spec.name])
        twice = modules_loaded_twice()
    finally:
        del sys.modules[spec.name]
    assert len(twice) == 1 and "second_copy_of_errors" in next(iter(twice.values()))


def test_a_node_error_is_the_core_error_class(pack):
    """pytest.raises(ReenactError) catches what a node raises: the nodes and the core share one ReenactError."""
    import torch
    from reenact_core.errors import ReenactError
    from reenact_core.motion_embedding import MotionEmbedding
    from reenact_testkit.comfy_pack import run_node
    assert pack.nodes.apply_embedding.ReenactError is ReenactError
    sd_style = [[torch.zeros(1, 77, 64), {"pooled_output": torch.zeros(1, 64)}]]
    with pytest.raises(ReenactError, match="expected CONDITIONING from SVD_img2vid_Conditioning"):
        run_node("ApplyMotionEmbedding", positive=sd_style, negative=sd_style,
                 motion_embedding=MotionEmbedding(torch.randn(5, 2, 64)), latent={"samples": torch.zeros(4, 4, 8, 8)},
                 strength=1.0, use_embedding_fps_and_bucket=True)

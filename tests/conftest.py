"""pytest setup: a real ComfyUI on the CPU, the pack loaded through ComfyUI's own loader."""
import os
import sys

import pytest

# Plain asserts in the test kit's helpers (reenact_testkit/server_prompts.py, ...) report their values as asserts in
# tests/ do; this must come before the kit is first imported.
pytest.register_assert_rewrite("reenact_testkit")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from comfyui_location import HOW_TO_GET_COMFYUI, PACK_ROOT, find_comfyui  # noqa: E402

COMFYUI = find_comfyui()
if COMFYUI is None:
    raise pytest.UsageError(HOW_TO_GET_COMFYUI + f"\n(looked in: {os.environ.get('COMFYUI_PATH') or 'custom_nodes/.., ~/ComfyUI'})")

sys.path.insert(0, COMFYUI)
sys.path.insert(1, PACK_ROOT)
import comfy.options  # noqa: E402

comfy.options.enable_args_parsing(False)
from comfy.cli_args import args  # noqa: E402

args.cpu = True
import torch  # noqa: E402

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

import folder_paths  # noqa: E402

from reenact_testkit.comfy_pack import load_pack  # noqa: E402

PACK_MODULE, PACK_NODE_IDS = load_pack()

# Two tiers (README, "Run the tests"). `full`: a real server, the full-size random checkpoint, the browser, cold
# torch.compile or the benchmark scripts; the quick tier (-m "not full") is everything else. `floor`: what the test
# run also checks on the oldest supported ComfyUI (scripts/run_tests.sh): loading, validation, the bundled
# workflows through a real server, the main command and VIDEO input.
FULL_MODULES = {"test_browser", "test_compiled_step", "test_benchmark_smoke", "test_server_queue",
                "test_server_workflows", "test_published_pack", "test_toy_fidelity", "test_main_command"}
# Runs long enough to learn a motion (hundreds of steps), and the toy model's own end-to-end checks: the quick tier
# checks the same code paths on a few steps (README, "Run the tests").
FULL_TESTS = {"test_inversion": {"test_planted_motion_recovery"},
              "test_held_out": {"test_a_learned_toy_motion_stops_before_steps_and_matches",
                                "test_a_toy_motion_still_being_learned_does_not_stop"},
              "test_toy_nodes": {"test_inverted_motion_transfers_through_the_pack_nodes"},
              "test_toy_world": {"test_toy_svd_obeys_true_tokens", "test_wrong_tokens_give_the_wrong_motion"},
              "test_failure_cleanup": {"test_resident_memory_does_not_grow_over_repeated_runs"}}
FLOOR_MODULES = {"test_pack_loading", "test_prompt_validation", "test_server_workflows", "test_video_input",
                 "test_published_pack"}
# Of the main command's tests, the floor runs the command itself (a real server, the demo) and its input checks.
FLOOR_TESTS = {"test_main_command": {"test_a_missing_input_file_is_named_before_any_server_starts",
                                     "test_a_missing_checkpoint_says_which_file_and_where",
                                     "test_reuses_a_running_server_and_writes_the_video",
                                     "test_demo_runs_the_whole_graph_on_the_toy_model_and_says_so"}}
SERVER_FIXTURES = {"comfy_server", "published_server"}


def pytest_collection_modifyitems(config, items):
    modules = {item.module.__name__.rsplit(".", 1)[-1]: item.module for item in items}
    unknown = [f"{module}::{name}" for table in (FULL_TESTS, FLOOR_TESTS) for module, names in table.items()
               if module in modules for name in names if not hasattr(modules[module], name)]
    if unknown:  # a renamed test would silently change tier
        raise pytest.UsageError(f"conftest.py marks tests that do not exist: {', '.join(sorted(unknown))}")
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1]
        if module in FULL_MODULES or item.originalname in FULL_TESTS.get(module, ()) or \
                SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.full)
        if module in FLOOR_MODULES or item.originalname in FLOOR_TESTS.get(module, ()):
            item.add_marker(pytest.mark.floor)


def pytest_report_header(config):
    from comfyui_version import __version__
    return f"ComfyUI {__version__} at {COMFYUI}"


@pytest.fixture(scope="session")
def pack():
    return PACK_MODULE


@pytest.fixture(scope="session")
def node_ids():
    return PACK_NODE_IDS


@pytest.fixture()
def tmp_folders(tmp_path):
    """Fresh input and motion_embeddings folders for one test."""
    saved_input = folder_paths.get_input_directory()
    saved = folder_paths.folder_names_and_paths["motion_embeddings"]
    (tmp_path / "input").mkdir()
    (tmp_path / "embeddings").mkdir()
    folder_paths.set_input_directory(str(tmp_path / "input"))
    folder_paths.folder_names_and_paths["motion_embeddings"] = ([str(tmp_path / "embeddings")], saved[1])
    folder_paths.filename_list_cache.clear()
    try:
        yield tmp_path
    finally:
        folder_paths.set_input_directory(saved_input)
        folder_paths.folder_names_and_paths["motion_embeddings"] = saved
        folder_paths.filename_list_cache.clear()


@pytest.fixture(scope="module")
def one_quiet_thread():
    """One torch thread and no console progress bars for a module of toy-model tests.

    On the shared 2-core machine one thread ran the toy 3-10x faster than two.
    """
    import comfy.utils
    saved = comfy.utils.PROGRESS_BAR_ENABLED, torch.get_num_threads()
    comfy.utils.PROGRESS_BAR_ENABLED = False
    torch.set_num_threads(1)
    try:
        yield
    finally:
        comfy.utils.PROGRESS_BAR_ENABLED = saved[0]
        torch.set_num_threads(saved[1])


@pytest.fixture(scope="session")
def small_svd():
    from reenact_testkit.small_models import make_small_svd
    with torch.inference_mode():
        return make_small_svd(seed=0)


@pytest.fixture(scope="session")
def small_vae():
    from reenact_testkit.small_models import make_small_vae
    with torch.inference_mode():
        return make_small_vae(seed=1)


@pytest.fixture(scope="session")
def small_clip_vision():
    from reenact_testkit.small_models import make_small_clip_vision
    with torch.inference_mode():
        return make_small_clip_vision(seed=2)


@pytest.fixture(scope="session")
def comfy_server(tmp_path_factory):
    """A real `main.py --cpu` on loopback with the pack installed as a custom node, temporary input, output and
    model folders, and the full-size random-weight SVD checkpoint as svd.safetensors / svd_xt.safetensors."""
    from reenact_cli.api_client import ComfyClient
    from reenact_cli.comfy_server import ComfyServer
    from reenact_testkit.server_env import prepare_base_directory

    base = prepare_base_directory(str(tmp_path_factory.mktemp("comfy_base")), PACK_ROOT)
    server = ComfyServer(COMFYUI, base).start()
    try:
        yield server, ComfyClient(server.url)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def video():
    """A small reference for the small SVD (4 frames, 8x8 latents, 2 tokens of 64); modules may define their own."""
    g = torch.Generator().manual_seed(31)
    latents = torch.randn(4, 4, 8, 8, generator=g)
    return dict(latents=latents, condition=latents[:1].clone(), frames=torch.rand(4, 64, 64, 3, generator=g),
                init=torch.randn(5, 2, 64, generator=g))

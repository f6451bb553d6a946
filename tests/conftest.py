"""pytest setup: a real ComfyUI on the CPU, the pack loaded through ComfyUI's own loader."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from reenact_cli.locate import HOW_TO_GET_COMFYUI, PACK_ROOT, find_comfyui  # noqa: E402

COMFYUI = find_comfyui()
if COMFYUI is None:
    raise pytest.UsageError(HOW_TO_GET_COMFYUI + f"\n(looked in: {os.environ.get('COMFYUI_PATH') or 'custom_nodes/.., ~/ComfyUI'})")

# ComfyUI first, ahead of this pack (whose `nodes` package would shadow ComfyUI's nodes.py). The pack's root stays
# on sys.path for the test kit, the toy and the CLI; its `reenact_core` is ComfyUI's loaded copy (load_pack).
sys.path.insert(0, COMFYUI)
import comfy.options  # noqa: E402

comfy.options.enable_args_parsing(False)
from comfy.cli_args import args  # noqa: E402

args.cpu = True
import torch  # noqa: E402

# One thread per pytest-xdist worker (scripts/run_tests.sh runs two on this 2-core machine), else up to two.
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER")
torch.set_num_threads(1 if XDIST_WORKER else max(1, min(2, os.cpu_count() or 1)))

import folder_paths  # noqa: E402

from reenact_testkit.comfy_pack import load_pack  # noqa: E402

PACK_MODULE, PACK_NODE_IDS = load_pack()

# Tiers are pytest marks on the tests or their modules (README, "Run the tests"). `full`: a real server, the
# full-size random checkpoint, the browser, cold torch.compile, the benchmark scripts, or a run long enough to learn a
# motion; the quick tier (-m "not full") is everything else. `floor`: what scripts/run_tests.sh also runs on the
# oldest supported ComfyUI (0.3.64). A test that starts a server must be marked full.
SERVER_FIXTURES = {"comfy_server", "published_server"}
# Set by scripts/run_tests.sh for the floor run: only `floor` tests run, whatever -m the caller passed.
FLOOR_RUN = os.environ.get("REENACT_FLOOR_RUN") == "1"


# pytest-xdist groups (`--dist loadgroup`, scripts/run_tests.sh): one worker runs a whole group, in order. Every module
# with a test that holds SVD's full-size weights (a full-size server, or the UNet in a benchmark run: 6-9 GB each) is
# in one group, so the two workers never hold them at once (24 GiB) and the session's full-size server starts once;
# any other test is grouped with its module, so module fixtures (servers, trained toys) are made once. Heaviest
# groups first, so none is left for last.
FULL_SIZE_GROUP = "full-size weights"
FULL_SIZE_MODULES = {"test_benchmark_smoke.py", "test_browser.py", "test_main_command.py", "test_server_workflows.py",
                     "test_published_pack.py", "test_pack_loading.py"}
# In the full-size group, the modules that hold the weights on their own (a benchmark run, the browser's module
# server) go before the session's full-size server starts, which then stays up to the end: never two at once.
FULL_SIZE_FIRST = ("test_benchmark_smoke.py", "test_browser.py")
HEAVY_FIRST = (FULL_SIZE_GROUP, "test_library.py", "test_inversion.py", "test_compiled_step.py", "test_svdlike_toy.py",
               "test_library_ray.py", "test_server_queue.py", "test_toy_nodes.py", "test_toy_fidelity.py")


def xdist_group(item) -> str:
    if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())) or item.path.name in FULL_SIZE_MODULES:
        return FULL_SIZE_GROUP
    return item.path.name


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook, which reads the groups into the test ids
def pytest_collection_modifyitems(config, items):
    unmarked = [item.nodeid for item in items
                if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())) and not item.get_closest_marker("full")]
    if unmarked:
        raise pytest.UsageError("tests that start a server must be marked full: " + ", ".join(unmarked))
    if FLOOR_RUN:
        deselected = [item for item in items if not item.get_closest_marker("floor")]
        if deselected:
            config.hook.pytest_deselected(items=deselected)
            items[:] = [item for item in items if item.get_closest_marker("floor")]
    # a worker sees `--dist loadgroup` as option.loadgroup (xdist sets its own option.dist to "no")
    if getattr(config.option, "loadgroup", False) or getattr(config.option, "dist", "no") == "loadgroup":
        for item in items:
            item.add_marker(pytest.mark.xdist_group(xdist_group(item)))
        rank = {group: i for i, group in enumerate(HEAVY_FIRST)}
        first = {module: i for i, module in enumerate(FULL_SIZE_FIRST)}
        items.sort(key=lambda item: (rank.get(xdist_group(item), len(rank)),  # stable: a module keeps its order
                                     first.get(item.path.name, len(first))))


# The server check at run time: every server starts through ComfyServer.start, and the commands that start one run
# as subprocesses of the test; both are refused to a test without the `full` mark, whatever fixture or helper starts
# them (a session or module fixture starts its server while the first test that needs it is being set up).
SERVER_COMMANDS = ("reenact_cli.run", "reenact_cli.library", "build_workflows.py", "dynamic_vram_server.py",
                   "library_throughput.py")
_running = {"item": None}


def require_full_mark(what: str) -> None:
    item = _running["item"]
    if item is not None and not item.get_closest_marker("full"):
        pytest.fail(f"{item.nodeid.split('@')[0]} starts {what} but is not marked full (tests that start a server "
                    f"are full-tier: README, \"Run the tests\")", pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    _running["item"] = item
    try:
        yield
    finally:
        _running["item"] = None


def _guard_server_starts():
    import subprocess

    from reenact_cli.comfy_server import ComfyServer
    start, popen_init = ComfyServer.start, subprocess.Popen.__init__

    def guarded_start(self, *args, **kwargs):
        require_full_mark(f"a ComfyUI server ({self.url})")
        return start(self, *args, **kwargs)

    def guarded_popen_init(self, args, *rest, **kwargs):
        words = [str(a) for a in args] if isinstance(args, (list, tuple)) else [str(args)]
        if any(w.endswith(SERVER_COMMANDS) for w in words):
            require_full_mark(f"a command that starts servers ({' '.join(words[:4])})")
        popen_init(self, args, *rest, **kwargs)

    ComfyServer.start, subprocess.Popen.__init__ = guarded_start, guarded_popen_init


_guard_server_starts()


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
    _suite_server["client"] = ComfyClient(server.url)
    try:
        yield server, _suite_server["client"]
    finally:
        _suite_server["client"] = None
        server.stop()


_suite_server = {"client": None}


@pytest.fixture(scope="session")
def free_suite_model():
    """Call it before starting a full-size server of a test's own: the suite's server (when up) lets its full-size
    model go, through ComfyUI's own /free, so two are never held at once (24 GiB, and a second test worker beside)."""
    def free():
        if _suite_server["client"] is not None:
            _suite_server["client"].post_json("/free", {"unload_models": True, "free_memory": True})
    return free


@pytest.fixture(scope="module")
def video():
    """A small reference for the small SVD (4 frames, 8x8 latents, 2 tokens of 64); modules may define their own."""
    g = torch.Generator().manual_seed(31)
    latents = torch.randn(4, 4, 8, 8, generator=g)
    return dict(latents=latents, condition=latents[:1].clone(), frames=torch.rand(4, 64, 64, 3, generator=g),
                init=torch.randn(5, 2, 64, generator=g))

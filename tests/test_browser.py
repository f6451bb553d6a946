"""The web extension in the real ComfyUI frontend, in Debian's headless chromium, against the running server.

One browser session checks: the page loads with no console errors, the pack's nodes are registered and found in the
node library, the frontend converts every bundled workflow to the same API prompt as reenact_cli does, the
live loss curve receives a point per step while a run queued from the page goes on, the motion preview arrives on
the node during that run, the panel showing both is on the node in the classic canvas and in Nodes 2.0 (Vue
nodes), and the curve finds the optimiser inside a subgraph, keeps only the running prompt's points and draws the
optional held-out series and early stop. Screenshots are kept in test-artifacts/ (or
$REENACT_ARTIFACTS).
"""
import json
import os
import re
import shutil
import subprocess
import time

import pytest

from reenact_cli.api_client import ComfyClient
from reenact_cli.comfy_server import ComfyServer
from reenact_cli.locate import PACK_ROOT
from reenact_cli.workflow_api import ui_to_api
from reenact_core.events import LOSS_EVENT
from reenact_testkit.comfy_pack import PACK_NODES, comfyui_root
from reenact_testkit.frontends import bundled_version, front_end_root, newer_versions
from reenact_testkit.server_env import REFERENCE_VIDEO, prepare_base_directory

pytestmark = pytest.mark.full

BROWSER_DIR = os.path.join(PACK_ROOT, "tests", "browser")
ARTIFACTS = os.environ.get("REENACT_ARTIFACTS") or os.path.join(PACK_ROOT, "test-artifacts")
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CURVE_STEPS = 3
PREVIEW_EVERY = 2
TINY_WIDGETS = {"LoadMotionReference": {"frame_count": 3, "width": 64, "height": 64},
                "OptimizeMotionEmbedding": {"steps": CURVE_STEPS, "preview_every": PREVIEW_EVERY},
                "SaveMotionEmbedding": {"filename_prefix": "browser/curve"}}


def require_browser_tools():
    missing = [what for what, ok in (
        (f"chromium at {CHROMIUM} (apt-get install chromium)", os.path.exists(CHROMIUM)),
        ("node (Node.js 20+)", shutil.which("node")),
        ("playwright-core (npm ci --prefix tests/browser)",
         os.path.isdir(os.path.join(BROWSER_DIR, "node_modules", "playwright-core")))) if not ok]
    if missing:
        pytest.fail("browser test tools are missing: " + "; ".join(missing) + ". scripts/install.sh installs them.")


def run_driver(url, config_path, artifacts):
    done = subprocess.run(["node", os.path.join(BROWSER_DIR, "check_frontend.mjs"), url, artifacts,
                           str(config_path)], capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, f"browser driver failed:\n{done.stderr[-4000:]}\n{done.stdout[-2000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


# The driver's own doing, which a bare ComfyUI never does: its switch between the classic canvas and Nodes 2.0 (the
# frontend's settings write is aborted by the page reload that follows it), and its Skip of App mode's first-visit
# tour (that tour's "seen" setting, written as the driver leaves App mode).
DRIVER_REQUESTS = ("/api/settings/Comfy.VueNodes.Enabled", "/api/settings/Comfy.OnboardingCoachmarks.Seen")


def normalised(messages, url):
    """Errors compared across two servers: ports differ, the frontend prints each line once per load, and its media
    previews add a random cache-buster (&rand=) to each request."""
    host = url.split("//", 1)[1]
    return {re.sub(r"&rand=[0-9.]+", "", re.sub(r"127\.0\.0\.1:\d+", "HOST", m.replace(host, "HOST")))
            for m in messages if not any(request in m for request in DRIVER_REQUESTS)}


def skip_first_start_dialog(client):
    """A fresh user folder makes the frontend open its template browser over the canvas on first start, at a
    moment that depends on load; mark the tutorial done, as a returning user's settings have it."""
    client.post_json("/settings/Comfy.TutorialCompleted", True)


def baseline_errors(tmp_path_factory, frontend_args, artifacts):
    """Console errors of the same frontend with no custom nodes: a fresh user folder gets 404s for its settings
    files and the offline machine cannot reach api.comfy.org, and ComfyUI's own Load Video node, shown on the same
    reference video, gets the requests its preview makes (Chromium aborts and restarts a video's range requests as it
    reads it). Only errors beyond these are the pack's."""
    base = prepare_base_directory(str(tmp_path_factory.mktemp("bare_comfy")), None, with_checkpoint=False)
    config = tmp_path_factory.mktemp("baseline") / "config.json"
    config.write_text(json.dumps({"baselineOnly": True, "baselineVideo": REFERENCE_VIDEO}))
    with ComfyServer(comfyui_root(), base, extra_args=frontend_args) as bare:
        skip_first_start_dialog(ComfyClient(bare.url))
        report = run_driver(bare.url, config, artifacts)
    return {kind: normalised(report[kind], bare.url) for kind in ("consoleErrors", "pageErrors", "failedRequests")}


def wait_for_idle_queue(client, timeout=900):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        queue = client.get_json("/queue")
        if not queue["queue_running"] and not queue["queue_pending"]:
            return
        time.sleep(1)
    raise AssertionError("the prompt queued from the browser did not finish")


def without_meta(prompt):
    return {k: {"class_type": v["class_type"], "inputs": v["inputs"]} for k, v in prompt.items()}


FRONTENDS = ["bundled", *newer_versions()]


@pytest.fixture(scope="module", params=FRONTENDS)
def frontend(request, comfy_server, tmp_path_factory, free_suite_model):
    """(version, server, client, extra server args): the frontend the ComfyUI under test pins, on the suite's
    server, then each newer one (scripts/test-frontends.txt) on a server of its own started with --front-end-root."""
    if request.param == "bundled":
        yield (bundled_version(), *comfy_server, ())
        return
    free_suite_model()
    args = ("--front-end-root", front_end_root(request.param))
    base = prepare_base_directory(str(tmp_path_factory.mktemp("comfy_base_frontend")), PACK_ROOT)
    with ComfyServer(comfyui_root(), base, extra_args=args) as server:
        yield request.param, server, ComfyClient(server.url), args


@pytest.fixture(scope="module")
def browser_report(frontend, tmp_path_factory):
    require_browser_tools()
    version, server, client, frontend_args = frontend
    artifacts = os.path.join(ARTIFACTS, f"frontend-{version}")
    workflows = {}
    for name in sorted(n for n in os.listdir(os.path.join(PACK_ROOT, "example_workflows")) if n.endswith(".json")):
        with open(os.path.join(PACK_ROOT, "example_workflows", name)) as f:
            workflows[name] = json.load(f)
    config = tmp_path_factory.mktemp("browser") / "config.json"
    config.write_text(json.dumps({
        "workflows": workflows, "screenshotWorkflow": "reenact_invert_and_transfer.json",
        "curve": {"workflow": workflows["reenact_invert_motion.json"], "widgets": TINY_WIDGETS,
                  "eventName": LOSS_EVENT}}))
    skip_first_start_dialog(client)
    report = run_driver(server.url, config, artifacts)
    wait_for_idle_queue(client)
    report["baseline"] = baseline_errors(tmp_path_factory, frontend_args, artifacts)
    report["artifacts"] = artifacts
    report["frontendVersion"] = version
    report["url"] = server.url
    report["normalised"] = {kind: normalised(report[kind], server.url)
                            for kind in ("consoleErrors", "pageErrors", "failedRequests")}
    report["object_info"] = client.object_info()
    report["workflows"] = workflows
    return report


def test_frontend_loads_the_extension_without_errors(browser_report):
    assert {"ReenactAnything.LossCurve", "ReenactAnything.MotionPreview"} <= set(browser_report["extensions"])
    url = browser_report["url"]
    for kind, messages in browser_report["normalised"].items():
        added = messages - browser_report["baseline"][kind]
        assert not added, f"{kind} that a ComfyUI without this pack does not show: {sorted(added)}"
    # Nothing of the pack's in what is left: the baseline's own lines (ComfyUI's Load Video on the same reference
    # file, whose name starts with reenact_) are the frontend's, not the pack's.
    own = [m for kind in ("consoleErrors", "pageErrors", "failedRequests") for m in browser_report[kind]
           if normalised([m], url) - browser_report["baseline"][kind]]
    everything = json.dumps(own)
    assert "reenact" not in everything.lower() and "loss_curve" not in everything


def test_pack_nodes_are_in_the_node_library(browser_report):
    assert PACK_NODES <= set(browser_report["registered"])
    assert "libraryError" not in browser_report, browser_report.get("libraryError")
    # The canvas is not DOM text: these names come from the library's search results.
    assert "Reenact Anything" in browser_report["libraryText"]
    assert "Optimize Motion Embedding" in browser_report["libraryText"]


def test_frontend_and_reenact_cli_convert_workflows_alike(browser_report):
    for name, workflow in browser_report["workflows"].items():
        ours = without_meta(ui_to_api(workflow, browser_report["object_info"]))
        assert without_meta(browser_report["converted"][name]) == ours, name


def test_live_loss_curve_gets_a_point_per_step(browser_report):
    points = browser_report["lossPoints"]
    assert [p[0] for p in points] == list(range(1, CURVE_STEPS + 1))
    assert all(isinstance(p[1], (int, float)) and p[1] > 0 for p in points)
    for shot in ("loss_curve.png", "loss_curve_nodes2.png", "loss_curve_app_mode.png", "workflow.png"):
        assert os.path.getsize(os.path.join(browser_report["artifacts"], shot)) > 20_000, shot


@pytest.mark.parametrize("mode", ["app", "classic", "nodes2"])
def test_live_panel_shows_on_the_node_in_each_mode(browser_report, mode):
    """The panel is a DOM widget: in the classic canvas the frontend lays it over the node, in Nodes 2.0 (Vue
    nodes) it sits inside the node's own element, and in App mode, chosen as one of the app's inputs, it sits in the
    app's input list (the workflow opens there; the frontend's own command leaves it). Each way it is on the page,
    once, with the preview above the curve and the curve's canvas holding one drawn point per step."""
    assert "appModeError" not in browser_report, browser_report.get("appModeError")
    panel = browser_report["panels"][mode]
    assert panel["inAppMode"] is (mode == "app"), "the page was not in the mode under test"
    assert panel["shown"] and panel["curveShown"] and panel["imageShown"], panel
    assert panel["panelsOnPage"] == 1, "one optimiser, one panel"
    if mode == "app":
        assert browser_report["graphShownInAppMode"] is False, "App mode did not replace the graph"
        assert browser_report["graphShownAfterLeaving"] is True, "the frontend's command did not leave App mode"
    else:
        assert panel["vueNodes"] is (mode == "nodes2"), "the page was not in the mode under test"
    if mode == "nodes2":
        assert panel["inVueNode"] == panel["nodeId"], "the panel is not inside the optimiser's Vue node"
    else:
        assert panel["inVueNode"] is None
    assert panel["drawn"]["points"] == str(CURVE_STEPS), panel["drawn"]
    assert panel["canvasPixels"][0] >= panel["curve"]["width"] > 150, "the curve's canvas was not drawn at its size"
    image, curve = panel["image"], panel["curve"]
    assert image["width"] > 100 and image["height"] > 100, "the preview is not shown large enough to see"
    assert image["y"] + image["height"] <= curve["y"], "the preview overlaps the loss curve"
    root = panel["root"]
    assert root["y"] <= image["y"] and curve["y"] + curve["height"] <= root["y"] + root["height"] + 1


def test_motion_preview_arrives_on_the_node_while_the_run_goes_on(browser_report):
    """preview_every 2 of 3 steps: one preview, after step 2, shown (decoded by the browser) before the run's last
    loss point, at the reference's 64 x 64, from ComfyUI's temp folder through /view."""
    preview = browser_report.get("preview")
    assert preview, "no motion preview reached the node"
    assert preview["steps"] == [PREVIEW_EVERY]
    assert preview["lossPointsAtPreview"][0] < CURVE_STEPS, "the preview came only after the run ended"
    assert (preview["naturalWidth"], preview["naturalHeight"]) == (64, 64)
    assert "/view?" in preview["src"] and "type=temp" in preview["src"] and "reenact_preview" in preview["src"]
    assert preview["caption"] == f"motion after step {PREVIEW_EVERY} of {CURVE_STEPS}"
    assert os.path.getsize(os.path.join(browser_report["artifacts"], "motion_preview.png")) > 2_000


def test_live_loss_curve_follows_the_running_prompt_inside_a_subgraph(browser_report):
    """Events fed to the page as the server sends them, for an optimiser turned into a subgraph ("12:5" ids); later
    ones carry the optional held-out points (repeated ones kept once) and where the run stopped."""
    seen = browser_report["subgraphCurve"]
    assert seen["otherPrompt"] == [], "an event of a prompt that is not running was drawn"
    assert seen["runningPrompt"] == [[1, 1.0], [2, None], [3, 0.05], [4, 0.002], [5, None], [6, 0.001]]
    assert seen["withHeldOut"] == {"points": 8, "heldOut": [[2, 0.5], [4, 0.01], [8, 0.002]],
                                   "stopped": {"step": 8, "reason": "held-out loss rose"}}
    assert seen["drawn"] == {"points": 8, "heldOut": 3, "legend": True, "stopped": "stopped at step 8"}
    assert seen["nextPrompt"] == [[1, 2.0]], "a new prompt did not start a new curve"
    assert os.path.getsize(os.path.join(browser_report["artifacts"], "loss_curve_subgraph.png")) > 2_000

"""The README's main-job command, `python -m reenact_cli.run`, as a user runs it."""
import os
import signal
import subprocess
import sys
import time

import pytest
from PIL import Image

from reenact_cli.locate import PACK_ROOT
from reenact_testkit.media import decode_all_frames, moving_square_frames, write_target_image, write_video
from reenact_testkit.signals import default_sigint

pytestmark = pytest.mark.full


def run_cli(*args, timeout=1200, tmpdir=None):
    """The command in a subprocess; `tmpdir` becomes its TMPDIR, so a test can see what it leaves there."""
    env = dict(os.environ, TMPDIR=str(tmpdir)) if tmpdir else None
    return subprocess.run([sys.executable, "-m", "reenact_cli.run", *args], cwd=PACK_ROOT, capture_output=True,
                          text=True, timeout=timeout, env=env)


def scratch(tmp_path):
    """An empty folder for the command's TMPDIR."""
    folder = tmp_path / "tmpdir"
    folder.mkdir()
    return folder


def assert_left_empty(folder):
    left = sorted(os.listdir(folder))
    assert left == [], f"expected the command to leave its TMPDIR {folder} empty, got {left}"


def media(tmp_path):
    return (write_video(str(tmp_path / "dance.mp4"), moving_square_frames()),
            write_target_image(str(tmp_path / "cat.png")))


@pytest.mark.floor
def test_a_missing_input_file_is_named_before_any_server_starts(tmp_path):
    video, image = media(tmp_path)
    done = run_cli("--reference", str(tmp_path / "nope.mp4"), "--image", image, "--server", "http://127.0.0.1:9")
    assert done.returncode == 2
    assert f"expected the reference video at {tmp_path / 'nope.mp4'}" in done.stderr
    assert "starting ComfyUI" not in done.stdout


@pytest.mark.floor
def test_a_missing_checkpoint_says_which_file_and_where(tmp_path):
    video, image = media(tmp_path)
    base = tmp_path / "comfy_base"
    tmpdir = scratch(tmp_path)
    done = run_cli("--reference", video, "--image", image, "--start-server", "--cpu",
                   "--base-directory", str(base), timeout=300, tmpdir=tmpdir)
    assert done.returncode == 2, done.stderr
    assert "missing checkpoint: svd_xt.safetensors" in done.stderr
    assert f"put it in {base / 'models' / 'checkpoints' / 'svd_xt.safetensors'}" in done.stderr
    assert "huggingface.co/stabilityai/stable-video-diffusion-img2vid-xt" in done.stderr
    assert "Traceback" not in done.stderr
    assert_left_empty(tmpdir)  # a failed run: the started server's config and log folder is gone too


@pytest.mark.floor
def test_reuses_a_running_server_and_writes_the_video(comfy_server, tmp_path):
    server, client = comfy_server
    video, image = media(tmp_path)
    output, tmpdir = tmp_path / "out.mp4", scratch(tmp_path)
    done = run_cli("--reference", video, "--image", image, "--server", server.url, "--frames", "3",
                   "--width", "64", "--height", "64", "--steps", "2", "--sampler-steps", "2",
                   "--preview-every", "2", "--output", str(output),
                   # the levers reach the bundled workflow's nodes and pass the server's validation
                   "--augment-copies", "2", "--augment-changes", "colour", "--debiased-loss-weight", "0.5",
                   "--appearance", "swap to the target's", tmpdir=tmpdir)
    assert done.returncode == 0, done.stderr[-3000:]
    assert_left_empty(tmpdir)
    assert f"wrote {output}" in done.stdout
    assert decode_all_frames(str(output)).shape == (3, 64, 64, 3)
    assert "Optimize Motion Embedding" in done.stderr and "loss" in done.stderr, "progress bar with the loss"
    assert "starting ComfyUI" not in done.stdout, "a running server is reused"
    # The motion preview after step 2, fetched from the server's temp folder into a folder of this run's own.
    preview = tmp_path / "out_previews_00001" / "step_00002.webp"
    assert f"motion preview after step 2 of 2: {preview}" in done.stderr
    with Image.open(preview) as webp:
        assert webp.format == "WEBP" and webp.n_frames == 3 and webp.size == (64, 64)


@pytest.mark.floor
def test_demo_runs_the_whole_graph_on_the_toy_model_and_says_so(tmp_path):
    """`--demo` on a machine with no SVD weights: a private server, the pack's nodes plus the toy demo
    nodes, the bundled clip and target. The video, the side-by-side picture and the label must all be
    there, and the result must move the way the reference does (tracked; see tests/test_toy_nodes.py
    for the spread: about 1 case in 8 misses at 50 steps, the demo runs 60 on a case that matched)."""
    from reenact_toy import toy_demo
    output, tmpdir = tmp_path / "demo.mp4", scratch(tmp_path)
    done = run_cli("--demo", "--output", str(output), timeout=900, tmpdir=tmpdir)
    assert done.returncode == 0, done.stderr[-3000:]
    assert_left_empty(tmpdir)  # the private ComfyUI's folders, models and output included
    assert toy_demo.LABEL in done.stdout
    frames = decode_all_frames(str(output))
    assert frames.shape == (8, 128, 128, 3)
    with Image.open(tmp_path / "demo_side_by_side.png") as picture:
        assert picture.width == 8 * 132 and picture.height > 2 * 132, picture.size
    score = toy_demo.score_frames(frames, toy_demo.load_spec())
    assert score["matches"], score
    assert f"mean path error {score['mean_err']:.2f}" in done.stdout
    assert "Optimize Motion Embedding" in done.stderr and "loss" in done.stderr
    assert "embedding saved reenact_demo/toy_motion_00001.safetensors" in done.stdout


def test_the_bundled_demo_assets_are_what_the_generator_writes(tmp_path):
    """The committed clip, target, init and spec come from reenact_testkit.make_demo_assets (fixed seed)."""
    import json

    import torch

    from reenact_core.embedding_file import load_embedding
    from reenact_testkit import make_demo_assets
    from reenact_toy import toy_codec, toy_demo, toy_world
    make_demo_assets.write_assets(str(tmp_path))
    fresh, bundled = toy_demo.load_spec(str(tmp_path)), toy_demo.load_spec()
    assert json.dumps(fresh, sort_keys=True) == json.dumps(bundled, sort_keys=True)
    assert torch.equal(load_embedding(str(tmp_path / toy_demo.INIT)).tokens,
                       load_embedding(f"{toy_demo.ASSETS}/{toy_demo.INIT}").tokens)
    clip = torch.from_numpy(decode_all_frames(f"{toy_demo.ASSETS}/{toy_demo.REFERENCE}")).float() / 255
    reference, _ = make_demo_assets.demo_videos()
    tracked = toy_world.track(toy_codec.pixels_to_latents(clip), reference.colour)
    assert (tracked - reference.path).abs().max() < 0.1, "the clip shows the spec's path"


def test_the_demo_never_replaces_a_file_in_a_users_base_directory(tmp_path):
    """With --base-directory pointing at a user's folder, the demo's init goes in only where no other file is."""
    from reenact_cli.demo import INIT_NAME, install_init
    from reenact_cli.session import UserError
    from reenact_toy import toy_demo
    install_init(str(tmp_path))
    placed = tmp_path / "models" / "motion_embeddings" / INIT_NAME
    assert placed.read_bytes() == open(f"{toy_demo.ASSETS}/{toy_demo.INIT}", "rb").read()
    install_init(str(tmp_path))                       # the same file again: fine
    placed.write_bytes(b"the user's own embedding")
    with pytest.raises(UserError, match="expected .* to be the demo's bundled init or absent, got another file"):
        install_init(str(tmp_path))
    assert placed.read_bytes() == b"the user's own embedding"


def write_embedding(path, frames: int, dim: int, seed: int):
    """A motion embedding file at exactly `path` (save_embedding adds a counter); returns its tokens."""
    import torch

    from reenact_core.embedding_file import save_embedding
    from reenact_core.motion_embedding import MotionEmbedding
    tokens = torch.randn(frames + 1, 2, dim, generator=torch.Generator().manual_seed(seed))
    os.replace(save_embedding(MotionEmbedding(tokens, {"steps": 1}), str(path.parent), "scratch"), path)
    return tokens


def test_embedding_applies_the_given_file_not_an_older_one_of_the_same_name(tmp_path, free_suite_model):
    """The server already holds an older motion.safetensors in models/motion_embeddings/reenact_cli/, made for
    another model (dim 768: Apply Motion Embedding refuses it against SVD's 1024). The run must apply the given
    file's tokens (so it succeeds) and leave the older file as it was."""
    from reenact_core.embedding_file import load_embedding
    from reenact_testkit.server_env import prepare_base_directory
    _, image = media(tmp_path)
    free_suite_model()
    base = prepare_base_directory(str(tmp_path / "comfy_base"), PACK_ROOT)
    older = tmp_path / "comfy_base" / "models" / "motion_embeddings" / "reenact_cli" / "motion.safetensors"
    older.parent.mkdir(parents=True)
    write_embedding(older, frames=3, dim=768, seed=1)
    older_bytes = older.read_bytes()
    given = tmp_path / "mine" / "motion.safetensors"
    given.parent.mkdir()
    tokens = write_embedding(given, frames=3, dim=1024, seed=2)
    output, tmpdir = tmp_path / "out.mp4", scratch(tmp_path)
    done = run_cli("--embedding", str(given), "--image", image, "--start-server", "--cpu", "--base-directory", base,
                   "--frames", "3", "--width", "64", "--height", "64", "--sampler-steps", "2",
                   "--output", str(output), timeout=900, tmpdir=tmpdir)
    assert done.returncode == 0, done.stderr[-3000:]
    placed = older.parent / "motion_00001.safetensors"
    assert f"-> the server's models/motion_embeddings/reenact_cli/{placed.name}" in done.stdout, done.stdout
    assert placed.read_bytes() == given.read_bytes()
    assert load_embedding(str(placed)).tokens.equal(tokens)
    assert older.read_bytes() == older_bytes, "the older file of the same name is left as it was"
    assert decode_all_frames(str(output)).shape == (3, 64, 64, 3)
    assert_left_empty(tmpdir)


def test_an_embedding_is_placed_once_per_content_and_never_over_another_file(tmp_path):
    """place_embedding: the same bytes reuse their copy (no pile of duplicates), other bytes under the same name
    get the next free number; no file already there changes."""
    from reenact_cli.run import place_embedding
    folder = tmp_path / "server_models"
    folder.mkdir()
    (folder / "wave.safetensors").write_bytes(b"the user's own wave")
    (folder / "wave_00001.safetensors").write_bytes(b"an earlier run's wave")
    mine = tmp_path / "wave.safetensors"
    mine.write_bytes(b"my wave")
    first = place_embedding(str(mine), str(folder))
    assert os.path.basename(first) == "wave_00002.safetensors"
    assert place_embedding(str(mine), str(folder)) == first, "expected the identical copy reused"
    mine.write_bytes(b"my wave, trained longer")
    assert os.path.basename(place_embedding(str(mine), str(folder))) == "wave_00003.safetensors"
    assert (folder / "wave.safetensors").read_bytes() == b"the user's own wave"
    assert (folder / "wave_00001.safetensors").read_bytes() == b"an earlier run's wave"
    assert (folder / "wave_00002.safetensors").read_bytes() == b"my wave"
    (folder / "wave.safetensors").write_bytes(b"my wave, trained longer")   # an identical file by the plain name
    assert os.path.basename(place_embedding(str(mine), str(folder))) in ("wave.safetensors", "wave_00003.safetensors")
    assert sorted(os.listdir(folder)) == [f"wave{n}.safetensors" for n in ("", "_00001", "_00002", "_00003")]


def comfyui_processes(base) -> list[int]:
    """Ids of running processes whose command line names `base` (a ComfyUI started with that base directory)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if str(base).encode() in f.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


def wait_until(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"expected {what} within {timeout:.0f} s, got nothing"
        time.sleep(0.2)


def test_ctrl_c_while_the_server_starts_leaves_no_folder_and_no_server(tmp_path):
    """Ctrl-C (SIGINT to the command alone, as `kill -INT` sends it) while its ComfyUI boots: exit 130, no
    traceback, the temporary folder removed and the started ComfyUI stopped."""
    video, image = media(tmp_path)
    base, tmpdir = tmp_path / "comfy_base", scratch(tmp_path)
    process = subprocess.Popen(
        [sys.executable, "-m", "reenact_cli.run", "--reference", video, "--image", image, "--start-server", "--cpu",
         "--base-directory", str(base)], cwd=PACK_ROOT, env=dict(os.environ, TMPDIR=str(tmpdir)), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        preexec_fn=default_sigint)
    try:
        wait_until(lambda: [p for p in comfyui_processes(base) if p != process.pid], 120, "a ComfyUI process")
        assert os.listdir(tmpdir), "expected the command's temporary folder while it runs, got none"
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    assert_left_empty(tmpdir)
    wait_until(lambda: not comfyui_processes(base), 30, "the started ComfyUI to be gone")


@pytest.mark.parametrize("command,flag", [
    ("from reenact_cli.run import main; main(['--demo'])", "--demo"),
    ("from reenact_cli.library.__main__ import main; sys.exit(main(['learn', '--library', 'lib', '--toy', "
     "'--references', 'none.mp4', '--start', '1']))", "--toy"),
], ids=["main-demo", "library-toy"])
@pytest.mark.parametrize("blocked,expected,not_expected", [
    ("torch", "{flag} needs the Python module torch, which is not installed here", "git clone"),
    ("reenact_toy", "{flag} needs a git clone of the repository: this copy has no reenact_toy", "Python module"),
    ("reenact_cli.demo", "{flag} needs a git clone of the repository: this copy has no reenact_cli.demo",
     "Python module"),
], ids=["torch", "reenact_toy", "reenact_cli.demo"])
def test_demo_names_the_missing_module_and_asks_for_a_git_clone_only_for_git_only_parts(tmp_path, command, flag,
                                                                                        blocked, expected,
                                                                                        not_expected):
    """A module set to None in sys.modules fails to import as a missing one does (ModuleNotFoundError). torch
    stands for any installable module the demo imports (cv2 was one). COMFYUI_PATH points at an empty folder, so
    a demo that did get past its imports stops at once instead of starting a server. The library's --toy checks
    before it reads its references or starts a server, so a missing reference does not hide the real problem."""
    expected = expected.format(flag=flag)
    code = f"import sys; sys.modules[{blocked!r}] = None; {command}"
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, COMFYUI_PATH=str(tmp_path), PYTHONPATH=PACK_ROOT))
    assert done.returncode == 2, done.stderr[-3000:]
    assert expected in done.stderr, f"expected {expected!r}, got {done.stderr!r}"
    assert not_expected not in done.stderr, f"expected no {not_expected!r}, got {done.stderr!r}"
    assert not os.listdir(tmp_path) or os.listdir(tmp_path) == ["lib"], "nothing started before the check"


def test_the_git_only_modules_are_the_python_modules_comfyignore_leaves_out():
    """run.GIT_ONLY_MODULES decides the "needs a git clone" message; .comfyignore decides what is published."""
    from reenact_cli.run import GIT_ONLY_MODULES
    with open(os.path.join(PACK_ROOT, ".comfyignore")) as f:
        anchored = [line.strip().strip("/") for line in f if line.startswith("/")]
    modules = {entry[:-3].replace("/", ".") for entry in anchored if entry.endswith(".py")}
    modules |= {entry.replace("/", ".") for entry in anchored
                if os.path.isfile(os.path.join(PACK_ROOT, entry, "__init__.py"))}
    assert set(GIT_ONLY_MODULES) == modules, f"expected {sorted(modules)} (from .comfyignore), got {GIT_ONLY_MODULES}"

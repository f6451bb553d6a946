"""The README's main-job command, `python -m reenact_cli.run`, as a user runs it."""
import subprocess
import sys

import pytest
from PIL import Image

from comfyui_location import PACK_ROOT
from reenact_testkit.media import decode_all_frames, moving_square_frames, write_target_image, write_video


def run_cli(*args, timeout=1200):
    return subprocess.run([sys.executable, "-m", "reenact_cli.run", *args], cwd=PACK_ROOT, capture_output=True,
                          text=True, timeout=timeout)


def media(tmp_path):
    return (write_video(str(tmp_path / "dance.mp4"), moving_square_frames()),
            write_target_image(str(tmp_path / "cat.png")))


def test_a_missing_input_file_is_named_before_any_server_starts(tmp_path):
    video, image = media(tmp_path)
    done = run_cli("--reference", str(tmp_path / "nope.mp4"), "--image", image, "--server", "http://127.0.0.1:9")
    assert done.returncode == 2
    assert f"expected the reference video at {tmp_path / 'nope.mp4'}" in done.stderr
    assert "starting ComfyUI" not in done.stdout


def test_a_missing_checkpoint_says_which_file_and_where(tmp_path):
    video, image = media(tmp_path)
    base = tmp_path / "comfy_base"
    done = run_cli("--reference", video, "--image", image, "--start-server", "--cpu",
                   "--base-directory", str(base), timeout=300)
    assert done.returncode == 2, done.stderr
    assert "missing checkpoint: svd_xt.safetensors" in done.stderr
    assert f"put it in {base / 'models' / 'checkpoints' / 'svd_xt.safetensors'}" in done.stderr
    assert "huggingface.co/stabilityai/stable-video-diffusion-img2vid-xt" in done.stderr
    assert "Traceback" not in done.stderr


def test_reuses_a_running_server_and_writes_the_video(comfy_server, tmp_path):
    server, client = comfy_server
    video, image = media(tmp_path)
    output = tmp_path / "out.mp4"
    done = run_cli("--reference", video, "--image", image, "--server", server.url, "--frames", "3",
                   "--width", "64", "--height", "64", "--steps", "2", "--sampler-steps", "2",
                   "--preview-every", "2", "--output", str(output))
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"wrote {output}" in done.stdout
    assert decode_all_frames(str(output)).shape == (3, 64, 64, 3)
    assert "Optimize Motion Embedding" in done.stderr and "loss" in done.stderr, "progress bar with the loss"
    assert "starting ComfyUI" not in done.stdout, "a running server is reused"
    # The motion preview after step 2, fetched from the server's temp folder into a folder of this run's own.
    preview = tmp_path / "out_previews_00001" / "step_00002.webp"
    assert f"motion preview after step 2 of 2: {preview}" in done.stderr
    with Image.open(preview) as webp:
        assert webp.format == "WEBP" and webp.n_frames == 3 and webp.size == (64, 64)


def test_demo_runs_the_whole_graph_on_the_toy_model_and_says_so(tmp_path):
    """`--demo` on a machine with no SVD weights: a private server, the pack's nodes plus the toy demo
    nodes, the bundled clip and target. The video, the side-by-side picture and the label must all be
    there, and the result must move the way the reference does (tracked; see tests/test_toy_nodes.py
    for the spread: about 1 case in 8 misses at 50 steps, the demo runs 60 on a case that matched)."""
    import cv2

    from reenact_toy import toy_demo
    output = tmp_path / "demo.mp4"
    done = run_cli("--demo", "--output", str(output), timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert toy_demo.LABEL in done.stdout
    frames = decode_all_frames(str(output))
    assert frames.shape == (8, 128, 128, 3)
    picture = cv2.imread(str(tmp_path / "demo_side_by_side.png"))
    assert picture.shape[1] == 8 * 132 and picture.shape[0] > 2 * 132, picture.shape
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

"""The README's main-job command, `python -m reenact_cli.run`, as a user runs it."""
import subprocess
import sys

from comfyui_location import PACK_ROOT
from reenact_testkit.media import moving_square_frames, read_video_frames, write_target_image, write_video


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
                   "--output", str(output))
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"wrote {output}" in done.stdout
    assert read_video_frames(str(output)).shape == (3, 64, 64, 3)
    assert "Optimize Motion Embedding" in done.stderr and "loss" in done.stderr, "progress bar with the loss"
    assert "starting ComfyUI" not in done.stdout, "a running server is reused"

"""The test set-up and run scripts: a missing ComfyUI fails with how to get it, and the floor run's selection cannot
be overridden by the caller's arguments."""
import os
import subprocess
import sys

from reenact_cli.locate import PACK_ROOT


def run(args, **env):
    return subprocess.run(args, cwd=PACK_ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **env})


def test_a_missing_comfyui_says_how_to_get_one(tmp_path):
    done = run([sys.executable, "scripts/find_comfyui.py"], COMFYUI_PATH=str(tmp_path / "nowhere"))
    assert done.returncode == 2
    assert "git clone https://github.com/comfyanonymous/ComfyUI" in done.stderr and "COMFYUI_PATH" in done.stderr
    assert "tests run against" not in done.stderr, "the main command prints this message too"


def test_a_missing_floor_checkout_says_how_to_get_it(tmp_path):
    done = run([sys.executable, "scripts/find_comfyui.py", "--floor"], COMFYUI_FLOOR_PATH=str(tmp_path / "nowhere"))
    assert done.returncode == 2
    assert "git clone --branch v0.3.64" in done.stderr and "COMFYUI_FLOOR_PATH" in done.stderr


def test_pytest_without_comfyui_fails_and_never_skips(tmp_path):
    done = run([sys.executable, "-m", "pytest", "tests/test_settings.py", "-q", "-p", "no:cacheprovider"],
               COMFYUI_PATH=str(tmp_path / "nowhere"))
    assert done.returncode not in (0, 5), done.stdout[-2000:]
    assert "ComfyUI was not found" in done.stdout + done.stderr
    assert "skipped" not in done.stdout


def collected(*args, **env):
    done = run([sys.executable, "-m", "pytest", "tests", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
               **env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return {line for line in done.stdout.splitlines() if "::" in line}


def test_the_floor_run_keeps_its_selection_whatever_the_caller_passes():
    """scripts/run_tests.sh passes its arguments to both runs; `-m "not full"` must not undo the floor's `-m floor`."""
    overridden = collected("-m", "not full", REENACT_FLOOR_RUN="1")
    assert overridden, "no floor test was collected"
    assert overridden == collected("-m", "floor and not full")

"""The inversion-step benchmark runs on a CPU at a small size with SVD's full-size UNet.

No timing is asserted (shared machines flake); the test checks the script's contract: its last
line is one JSON object with the fields the performance issue reads, for the real architecture.
"""
import json
import os
import subprocess
import sys

from comfyui_location import PACK_ROOT

FIELDS = {"device", "frames", "height", "width", "tokens", "dtype", "checkpointing", "s_per_step",
          "peak_mem_gb", "tflop_per_step", "achieved_tflops"}


def test_cpu_smoke_run_prints_json_last():
    script = os.path.join(PACK_ROOT, "benchmarks", "inversion_step.py")
    out = subprocess.run([sys.executable, script, "--device", "cpu", "--frames", "4", "--height", "128",
                          "--width", "128", "--steps", "1", "--warmup", "1", "--dtype", "fp32"],
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    assert FIELDS <= set(result)
    assert abs(result["params"] - 1.52e9) < 0.01e9, "SVD's UNet has 1.52 B parameters"
    assert (result["frames"], result["height"], result["width"]) == (4, 128, 128)
    # forward + checkpoint recompute + backward of a 1.52 B UNet on 4 x 16 x 16 latents
    assert 0.1 < result["tflop_per_step"] < 5 and result["s_per_step"] > 0
    assert "inversion step benchmark" in lines[0]


def test_performance_flags_reach_the_run_and_the_json():
    """--precision, --checkpointing layers, --attention and --memory-mode are applied, not just echoed.

    The small model keeps this cheap; the JSON reports what the run actually used (resolved dtype
    and checkpointing, and ComfyUI's attention function after the flag was applied).
    """
    script = os.path.join(PACK_ROOT, "benchmarks", "inversion_step.py")
    common = [sys.executable, script, "--device", "cpu", "--model", "small", "--frames", "2", "--height", "64",
              "--width", "64", "--steps", "1", "--warmup", "0", "--dtype", "fp32"]
    runs = {
        "bf16_layers_sdpa": common + ["--precision", "bf16", "--checkpointing", "layers", "--attention", "pytorch"],
        "low_vram_split": common + ["--checkpointing", "off", "--memory-mode", "low_vram", "--attention", "split"],
    }
    results = {}
    for name, cmd in runs.items():
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr[-3000:]
        results[name] = json.loads(out.stdout.strip().splitlines()[-1])
        assert FIELDS <= set(results[name])
    first, second = results["bf16_layers_sdpa"], results["low_vram_split"]
    assert (first["dtype"], first["weight_dtype"], first["checkpointing"]) == ("bf16", "fp32", "layers")
    assert first["attention"] == "attention_pytorch"
    assert (second["dtype"], second["checkpointing"], second["memory_mode"]) == ("bf16", "layers", "low_vram")
    assert second["attention"] == "attention_split"

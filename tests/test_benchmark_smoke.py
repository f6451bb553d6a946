"""The inversion-step benchmark runs on a CPU at a small size with SVD's full-size UNet.

No timing is asserted (shared machines flake); the test checks the script's contract: its last
line is one JSON object with the fields the performance issue reads, for the real architecture.
"""
import json
import os
import subprocess
import sys

import pytest

from reenact_cli.locate import PACK_ROOT

pytestmark = pytest.mark.full

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


def last_json(cmd):
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_counted_step_is_the_measured_step():
    """count_step.py (no run; meta device for any size) counts the FLOPs inversion_step.py measures.

    On real CPU tensors the two count the same step of the optimiser's own code to within 1%, for
    checkpointing off and blocks; on meta (GPU attention kernel) the forward is the same and the whole
    step within 10% (a fused kernel's backward is counted differently from the CPU's math path).
    """
    bench = os.path.join(PACK_ROOT, "benchmarks")
    size = ["--model", "small", "--frames", "4", "--height", "128", "--width", "128", "--dtype", "fp32"]
    counted = {r["checkpointing"]: r for r in last_json(
        [sys.executable, os.path.join(bench, "count_step.py"), "--device", "cpu", *size,
         "--checkpointing", "off", "blocks"])["rows"]}
    on_meta = {r["checkpointing"]: r for r in last_json(
        [sys.executable, os.path.join(bench, "count_step.py"), *size, "--checkpointing", "off", "blocks"])["rows"]}
    for mode in ("off", "blocks"):
        measured = last_json([sys.executable, os.path.join(bench, "inversion_step.py"), "--device", "cpu", *size,
                              "--steps", "1", "--warmup", "0", "--attention", "pytorch", "--checkpointing", mode])
        assert abs(counted[mode]["flop_per_step"] / 1e12 - measured["tflop_per_step"]) <= \
            0.01 * measured["tflop_per_step"] + 1e-4, (mode, counted[mode], measured)
        assert on_meta[mode]["flop_forward"] == counted[mode]["flop_forward"]
        assert abs(on_meta[mode]["flop_per_step"] / counted[mode]["flop_per_step"] - 1) < 0.1
    assert counted["blocks"]["flop_per_step"] > 1.3 * counted["off"]["flop_per_step"], "one more forward"
    assert counted["blocks"]["kept_between_segments_gb"] < counted["off"]["kept_between_segments_gb"] / 5


def test_profile_split_classes_kernel_names():
    """The classes of the time split, for eager aten ops and for the kernels a GPU profile shows (cuBLAS and
    cuDNN kernels, and inductor's fused Triton kernels, named after what they fuse)."""
    sys.path.insert(0, os.path.join(PACK_ROOT, "benchmarks"))
    from profile_split import op_class
    names = {"aten::addmm": "matmul", "aten::bmm": "matmul", "nvjet_tst_128x256_64x4_1x2_h_bz_coopA_NTN": "matmul",
             "sm90_xmma_fprop_implicit_gemm_bf16bf16_bf16f32_f32_nhwckrsc_nhwc": "conv",
             "aten::cudnn_convolution": "conv", "cudnn_generated_fort_native_sdpa_sm90_flash_fprop": "attention",
             "aten::_scaled_dot_product_flash_attention_for_cpu": "attention",
             "triton_red_fused_native_group_norm_0": "norm", "aten::native_layer_norm": "norm",
             "triton_poi_fused_add_mul_silu_3": "elementwise", "aten::gelu": "elementwise",
             "aten::add_": "elementwise", "Memcpy DtoH (Device -> Pinned)": "other"}
    assert {name: op_class(name) for name in names} == names

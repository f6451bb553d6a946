"""gpu_check.sh's results.jsonl as one markdown table, with the peer ratio and the issue's targets checked.

  python benchmarks/gpu_check_summary.py OUT_DIR/results.jsonl
"""
import json
import sys

# run name -> (target s/step, target peak GB); None where the issue sets no target for that run
TARGETS = {"blocks_compiled": (0.30, 20.0), "budget_compiled": (0.30, 20.0), "frames25_compiled": (0.55, 32.0),
           "frames25_budget": (0.55, 32.0), "low_vram": (None, 7.0), "low_vram_compiled": (None, 7.0)}
COMPILE_TARGET_S = 90.0
USEFUL_RATE_TARGET = 0.45


def mark(value, limit):
    if value is None or limit is None:
        return ""
    return " ok" if value <= limit else " MISSED"


def rows(results):
    peer = next((r for r in results if r.get("run") == "peer" and "s_per_step" in r), None)
    for r in results:
        if r.get("run", "").startswith("count") or "s_per_step" not in r:
            continue
        s_target, gb_target = TARGETS.get(r["run"], (None, None))
        speedup = f"{peer['s_per_step'] / r['s_per_step']:.2f}" if peer and r is not peer else "-"
        compile_s = r.get("compile_s", 0.0)
        useful = r.get("useful_fraction_of_matmul_rate")
        yield [r["run"], f"{r['s_per_step']:.3f}{mark(r['s_per_step'], s_target)}",
               f"{r['peak_mem_gb']}{mark(r['peak_mem_gb'], gb_target)}",
               f"{compile_s}{mark(compile_s, COMPILE_TARGET_S) if r.get('compile') else ''}",
               str(r.get("compiled_graphs", "-")), str(r.get("graph_breaks", "-")), str(r.get("tflop_per_step")),
               "-" if useful is None else f"{useful:.0%}{' ok' if useful >= USEFUL_RATE_TARGET else ' MISSED'}",
               speedup, " ".join(f"{k} {v:.0%}" for k, v in r.get("time_split", {}).items() if k != "total_ms")]


def server_table(r):
    """dynamic_vram_server.py's run: one row per prompt, what the server said (no s/step: whole prompts)."""
    lines = [f"\nComfyUI {r.get('comfyui_version')} server on {r.get('device_name')}: dynamic VRAM "
             f"{'enabled' if r.get('dynamic_vram_enabled') else 'off'}, MODEL dynamic: {r.get('dynamic')}, "
             f"delegate used: {r.get('delegate_used')}, all prompts ok: {r.get('ok')}"
             + (f"; error: {r['error']}" if r.get("error") else ""),
             "", "| prompt | status | wall s | most memory used GB | torch reserved GB | dynamic loads | "
             "ordinary loads | delegate |", "|---|---|---|---|---|---|---|---|"]
    for name, p in r.get("prompts", {}).items():
        lines.append(f"| {name} | {p['status']}{': ' + p['error'] if p.get('error') else ''} | {p['wall_s']} | "
                     f"{p.get('used_gb_max', '-')} | {p.get('torch_reserved_gb_max', '-')} | "
                     f"{', '.join(p.get('dynamic_loads', [])) or '-'} | {p.get('ordinary_loads', '-')} | "
                     f"{p.get('delegate_used', '-')} |")
    return "\n".join(lines)


def main(path):
    with open(path) as f:
        results = [json.loads(line) for line in f if line.strip()]
    header = ["run", "s/step", "peak GB", "compile s", "graphs", "breaks", "TFLOP/step (counted)",
              "useful share of bf16 matmul rate", "peer s/step / this", "time split"]
    table = list(rows(results))
    if table:  # none in a server-only check
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
    for row in table:
        print("| " + " | ".join(row) + " |")
    for r in results:
        if r.get("failed") or r.get("skipped"):
            print(f"- {r['run']}: {'failed (see its log)' if r.get('failed') else 'skipped: ' + r['skipped']}")
    for r in results:
        if r.get("run") == "dynamic_vram" and not r.get("failed") and not r.get("skipped"):
            print(server_table(r))
    device = next((r.get("device_name") for r in results if r.get("bf16_matmul_tflops")), None)
    if device:
        rate = next(r["bf16_matmul_tflops"] for r in results if r.get("bf16_matmul_tflops"))
        print(f"\n{device}, measured bf16 matmul rate {rate} TFLOP/s.")


if __name__ == "__main__":
    main(sys.argv[1])

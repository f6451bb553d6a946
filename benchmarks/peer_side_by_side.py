"""Our inversion step and the peer's training step at the same setting, in one run, with the ratio.

Each side runs in its own process (the peer pins packages that clash with ComfyUI's): ours is
inversion_step.py, once per --ours option set; the peer's is peer_step.py with --peer-site prepended to
PYTHONPATH. Prints one row per run and the peer/ours ratio of s/step, then one JSON line.

  python benchmarks/peer_side_by_side.py --peer-repo /tmp/peer_repo --peer-site /tmp/peer_site \\
      --ours "--dtype fp16 --checkpointing blocks" --ours "--dtype bf16 --checkpointing blocks"
"""
import argparse
import json
import os
import shlex
import subprocess
import sys

from step_settings import add_step_settings, step_settings_flags

HERE = os.path.dirname(os.path.abspath(__file__))


def last_json(command, env=None):
    """Run a benchmark; its last stdout line is its JSON result. A failure shows its output and stops."""
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
        sys.exit(f"expected {' '.join(command[:2])} to succeed, it exited with {done.returncode}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--peer-repo", required=True)
    p.add_argument("--peer-site", required=True, help="folder holding the peer's pinned packages")
    add_step_settings(p)
    p.add_argument("--ours", action="append", help="extra inversion_step.py flags; repeat for several runs")
    p.add_argument("--peer", default="", help="extra peer_step.py flags (e.g. --mixed-precision no on a CPU)")
    opts = p.parse_args(argv)
    common = step_settings_flags(opts)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [opts.peer_site, os.environ.get("PYTHONPATH")])))
    peer = last_json([sys.executable, os.path.join(HERE, "peer_step.py"), "--peer-repo", opts.peer_repo, *common,
                      *shlex.split(opts.peer)], env=env)
    rows = []
    for extra in opts.ours or ["--dtype bf16 --checkpointing blocks"]:
        ours = last_json([sys.executable, os.path.join(HERE, "inversion_step.py"), *common, *shlex.split(extra)])
        rows.append({"flags": extra, "ours": ours, "speedup": peer["s_per_step"] / ours["s_per_step"]})
    print(f"{opts.frames}x{opts.height}x{opts.width}, N={opts.tokens}, {opts.device}")
    print("| run | s/step | peak GB | TFLOP/step | peer s/step / this |")
    print("|---|---|---|---|---|")
    print(f"| peer ({peer['dtype']}, checkpointing {peer['checkpointing']}, {peer['attention']}) | "
          f"{peer['s_per_step']:.3f} | {peer['peak_mem_gb']} | {peer['tflop_per_step']:.2f} | 1.00 |")
    for row in rows:
        o = row["ours"]
        print(f"| ours ({row['flags']}) | {o['s_per_step']:.3f} | {o['peak_mem_gb']} | {o['tflop_per_step']:.2f} | "
              f"{row['speedup']:.2f} |")
    print(json.dumps({"peer": peer, "ours": rows}))


if __name__ == "__main__":
    main()

"""Jobs per hour of the motion library on the toy model with 1, 2 and 3 CPU servers on this machine, and the
overhead per job (upload, queue and websocket, fetch) against the server's own execution time.

    python benchmarks/library_throughput.py                       # the table in benchmarks/README.md
    python benchmarks/library_throughput.py --servers 1 --jobs 2 --steps 4   # smoke

Each server count learns the same --jobs toy references (a fresh library each time, --steps optimisation steps)
through `python -m reenact_cli.library learn --start N --toy`, in this process. Prints a markdown table and, last,
one JSON line.
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from reenact_cli.library import __main__ as library  # noqa: E402
from reenact_cli.library.manifest import Manifest  # noqa: E402
from reenact_testkit.library_media import write_toy_references  # noqa: E402


def measure(count, references, steps, workdir):
    lib = os.path.join(workdir, f"lib{count}")
    started = time.perf_counter()
    status = library.main(["learn", "--library", lib, "--references", *references, "--toy", "--steps", str(steps),
                           "--start", str(count)])
    wall = time.perf_counter() - started
    states = Manifest(lib).read()
    done = [h["seconds"] for s in states.values() for h in s.history if h["outcome"] == "done"]
    overhead = [d["total"] - d["server_execution"] for d in done if d.get("server_execution") is not None]
    execution = [d["server_execution"] for d in done if d.get("server_execution") is not None]
    return {"servers": count, "status": status, "jobs": len(done), "wall_s": round(wall, 1),
            "jobs_per_hour": round(3600 * len(done) / wall, 1),
            "execution_s": round(statistics.median(execution), 2), "overhead_s": round(statistics.median(overhead), 2),
            "upload_s": round(statistics.median(d["upload"] for d in done), 2),
            "fetch_s": round(statistics.median(d["fetch"] for d in done), 2)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--jobs", type=int, default=6)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="library_bench_") as workdir:
        references = write_toy_references(workdir, args.jobs, seed=4000)
        rows = [measure(n, references, args.steps, workdir) for n in args.servers]
    print("| servers | jobs | wall (s) | jobs per hour | server execution per job (s, median) | overhead per job "
          "(s, median: total - execution) | upload (s) | fetch (s) |")
    print("|---" * 8 + "|")
    for r in rows:
        print(f"| {r['servers']} | {r['jobs']} | {r['wall_s']} | {r['jobs_per_hour']} | {r['execution_s']} | "
              f"{r['overhead_s']} | {r['upload_s']} | {r['fetch_s']} |")
    print(json.dumps({"args": vars(args), "rows": rows}))


if __name__ == "__main__":
    main()

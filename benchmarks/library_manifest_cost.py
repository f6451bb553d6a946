"""What a claim and a finish cost in the library's manifest as the library grows: issue 33's measurement, rerun on
the SQLite manifest. For each size N, N jobs are added, half of them claimed and finished (a library half done),
then the time per job of claim + finish is taken over the next `--sample` jobs, and the time of one refresh of the
scheduler's view (the events since the last look) and one full read of the library.

    python benchmarks/library_manifest_cost.py                      # N = 1000, 4000, 20000
    python benchmarks/library_manifest_cost.py --sizes 100 --sample 20   # a smoke run

Before (the JSON-lines manifest, read whole on every claim; measured on this 2-core machine): 14 ms per job at
1,000 jobs, 56 ms at 4,000, 181 ms at 20,000 half done.
"""
import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from reenact_cli.library.jobs import Job, Outcome  # noqa: E402
from reenact_cli.library.manifest import Manifest  # noqa: E402


def measure(size: int, sample: int) -> dict:
    with tempfile.TemporaryDirectory() as library:
        m = Manifest(library)
        m.open_run()
        m.add([Job("apply", {"image": f"{i}.png"}, {}, f"job{i:06}") for i in range(size)])
        for i in range(size // 2):
            m.finish(f"job{i:06}", m.claim(f"job{i:06}", "s"), "s", Outcome(True, output="x"), 3)
        seen, _ = m.changes(0)
        started = time.perf_counter()
        for i in range(size // 2, size // 2 + sample):
            m.finish(f"job{i:06}", m.claim(f"job{i:06}", "s"), "s", Outcome(True, output="x"), 3)
        per_job = (time.perf_counter() - started) / sample
        started = time.perf_counter()
        _, changed = m.changes(seen)
        refresh = time.perf_counter() - started
        started = time.perf_counter()
        m.read()
        full = time.perf_counter() - started
        m.close_run()
        return {"jobs": size, "claim_and_finish_ms": round(per_job * 1000, 2),
                "refresh_ms": round(refresh * 1000, 2), "refresh_jobs": len(changed),
                "full_read_ms": round(full * 1000, 1)}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 4000, 20000])
    p.add_argument("--sample", type=int, default=200)
    args = p.parse_args()
    for size in args.sizes:
        print(json.dumps(measure(size, args.sample)), flush=True)


if __name__ == "__main__":
    main()

"""The time summary at the end of .ci/run: each phase, the budget, and the slowest tests, from the run's own output.

    python scripts/ci_summary.py TIMINGS_DIR --setup-seconds S --total-seconds T [--markdown]

TIMINGS_DIR holds what scripts/run_tests.sh wrote there (REENACT_TIMINGS_DIR): phases.txt and each run's JUnit XML
(newest.xml, floor.xml). --markdown prints the same as the table benchmarks/README.md keeps ("Test run times").
"""
import argparse
import os
import xml.etree.ElementTree as ET

BUDGET_S = 30 * 60  # issue 34: CI within 30 minutes on the 2-core machine (CI's own limit is 90)


def test_times(path):
    """[(seconds, test id, outcome)] for every test case of one JUnit file; setup and teardown are in its time."""
    if not os.path.exists(path):
        return []
    out = []
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome = next((child.tag for child in case if child.tag in ("failure", "error", "skipped")), "passed")
        out.append((float(case.get("time", 0)), f"{case.get('classname')}::{case.get('name')}", outcome))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("timings")
    parser.add_argument("--setup-seconds", type=int, required=True)
    parser.add_argument("--total-seconds", type=int, required=True)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    phases = {}
    if os.path.exists(os.path.join(args.timings, "phases.txt")):
        with open(os.path.join(args.timings, "phases.txt")) as f:
            phases = {name: int(value) for name, value in (line.split() for line in f if line.strip())}
    runs = {name: test_times(os.path.join(args.timings, f"{name}.xml")) for name in ("newest", "floor")}
    rows = [("set-up (scripts/install-dev.sh)", args.setup_seconds)]
    for name in ("newest", "floor"):
        tests = runs[name]
        counts = {k: sum(1 for t in tests if t[2] == k) for k in ("passed", "failure", "error", "skipped")}
        text = ", ".join(f"{v} {k}" for k, v in counts.items() if v)
        rows.append((f"{name} ComfyUI: {text or 'no tests'}", phases.get(name, 0)))
    rows.append(("whole run", args.total_seconds))
    verdict = "within" if args.total_seconds <= BUDGET_S else "OVER"
    slowest = sorted(((t, f"{name}: {test}") for name in runs for t, test, _ in runs[name]), reverse=True)[:10]
    if args.markdown:
        print("| phase | seconds |\n|---|---|")
        print("\n".join(f"| {label} | {s} |" for label, s in rows))
        print("\n| slowest tests (setup included) | seconds |\n|---|---|")
        print("\n".join(f"| {test} | {t:.0f} |" for t, test in slowest))
        return
    print("\n== CI time summary ==")
    for label, s in rows:
        print(f"{s:>6} s  {s / 60:5.1f} min  {label}")
    print(f"budget: {BUDGET_S // 60} min; this run took {args.total_seconds / 60:.1f} min: {verdict} the budget")
    print("slowest 10 tests (setup included; with two workers they overlap):")
    for t, test in slowest:
        print(f"{t:>8.1f} s  {test}")
    every = [t for tests in runs.values() for t in tests]
    failed = sum(1 for t in every if t[2] in ("failure", "error"))
    print(f"total: {sum(1 for t in every if t[2] == 'passed')} passed, {failed} failed, "
          f"{sum(1 for t in every if t[2] == 'skipped')} skipped")


if __name__ == "__main__":
    main()

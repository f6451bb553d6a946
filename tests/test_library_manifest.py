"""The motion library's parts that need no server (quick tier): the SQLite manifest under crashes at every record
boundary, which runs count as alive, the import of a manifest.jsonl library, --retry-failed, the output put race,
the import without fcntl (Windows), which errors mark a server down, and the progress in a plain log."""
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.error

import pytest

from reenact_cli.library.jobs import Job, Outcome
from reenact_cli.library.manifest import DONE, FAILED, PENDING, RUNNING, Manifest
from reenact_cli.locate import PACK_ROOT
from reenact_core.file_writes import place_bytes

# A run's life on a library of four jobs, each step one transaction (claim: the started event and the state together).
RUN_SCRIPT = """
import os, signal, sys
from reenact_cli.library.jobs import Job, Outcome
from reenact_cli.library.manifest import Manifest
library, kill_at = sys.argv[1], int(sys.argv[2])
count = 0
original = Manifest._event
def counted(self, db, *args, **kwargs):   # SIGKILL this process at the kill_at-th record, mid-transaction
    global count
    count += 1
    if count == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
    return original(self, db, *args, **kwargs)
Manifest._event = counted
m = Manifest(library)
m.open_run()
jobs = [Job("learn", {"reference": f"r{i}.mp4"}, {"steps": 1}, f"job{i}") for i in range(4)]
m.add(jobs)
for i, job in enumerate(jobs):
    attempt = m.claim(job.id, "s")
    if i == 1:
        m.finish(job.id, attempt, "s", Outcome(False, "boom"), 3)
        attempt = m.claim(job.id, "s")
    if i == 2:
        m.release(job.id, attempt, "s", "ctrl-c")
        attempt = m.claim(job.id, "s")
    m.finish(job.id, attempt, "s", Outcome(True, output=f"out{i}"), 3)
m.close_run()
print("records", count)
"""


def run_script(library, kill_at):
    return subprocess.run([sys.executable, "-c", RUN_SCRIPT, str(library), str(kill_at)], cwd=PACK_ROOT,
                          capture_output=True, text=True, timeout=120)


def finish_the_rest(library):
    """A rerun: it claims what is pending or held by the dead run, and finishes it."""
    m = Manifest(str(library))
    m.open_run()
    jobs = [Job("learn", {"reference": f"r{i}.mp4"}, {"steps": 1}, f"job{i}") for i in range(4)]
    m.add(jobs)
    for job in jobs:
        attempt = m.claim(job.id, "rerun")
        if attempt is not None:
            m.finish(job.id, attempt, "rerun", Outcome(True, output="again"), 3)
    m.close_run()
    return m


def test_a_crash_at_every_record_boundary_loses_nothing_and_duplicates_nothing(tmp_path):
    whole = run_script(tmp_path / "whole", 0)
    assert whole.returncode == 0, whole.stderr
    records = int(whole.stdout.split()[-1])
    assert records == 4 + 6 + 5 + 1, "added 4, started 6, done 4 and attempt_failed 1, released 1"
    for kill_at in range(1, records + 1):
        library = tmp_path / f"killed{kill_at}"
        killed = run_script(library, kill_at)
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        m = finish_the_rest(library)
        states, events = m.read(), m.events()
        assert sorted(states) == [f"job{i}" for i in range(4)], kill_at
        assert all(s.status == DONE for s in states.values()), (kill_at, {i: s.status for i, s in states.items()})
        for job_id in states:
            kinds = [e["event"] for e in events if e["job"] == job_id]
            assert kinds.count("added") == 1 and kinds.count("done") == 1, (kill_at, job_id, kinds)
        # a record is in the manifest only with its state: the events before the kill are a prefix of the script's
        assert len([e for e in events if e["run"] != m.run_id]) < kill_at, kill_at


def test_a_job_held_by_a_live_run_is_not_taken_and_one_of_a_dead_run_is(tmp_path):
    job = Job("learn", {"reference": "r.mp4"}, {}, "job")
    first = Manifest(str(tmp_path))
    first.open_run()
    first.add([job])
    assert first.claim("job", "a") == 1
    second = Manifest(str(tmp_path))
    second.open_run()
    assert second.claim("job", "b") is None, "taken from a live run"
    # the same run id, as a process that has ended (a SIGKILLed run never marks itself ended)
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    with first.change() as db:
        db.execute("UPDATE runs SET pid = ? WHERE id = ?", (int(ended.stdout), first.run_id))
    first._beating.clear()
    assert second.claim("job", "b") == 2
    # a run on another host: alive while its heartbeat is fresh
    third = Manifest(str(tmp_path))
    with third.change() as db:
        db.execute("INSERT INTO runs (id, host, pid, heartbeat) VALUES ('far', 'another-host', 1, ?)",
                   (__import__("time").time(),))
        db.execute("UPDATE jobs SET run = 'far', status = ? WHERE id = 'job'", (RUNNING,))
    assert third.claim("job", "c") is None
    with third.change() as db:
        db.execute("UPDATE runs SET heartbeat = heartbeat - 3600 WHERE id = 'far'")
    assert third.claim("job", "c") == 3
    second.close_run()


def test_a_jsonl_library_is_imported_once_with_its_torn_last_line_ignored(tmp_path):
    lines = [{"job": "a", "event": "added", "kind": "learn", "inputs": {"reference": "a.mp4"}, "settings": {}},
             {"job": "b", "event": "added", "kind": "learn", "inputs": {"reference": "b.mp4"}, "settings": {}},
             {"job": "c", "event": "added", "kind": "learn", "inputs": {"reference": "c.mp4"}, "settings": {}},
             {"job": "a", "event": "started", "attempt": 1, "server": "s", "run": "old"},
             {"job": "a", "event": "done", "attempt": 1, "server": "s", "run": "old", "output": "a.safetensors"},
             {"job": "c", "event": "failed", "run": "old", "reason": "expected a video"},
             {"job": "b", "event": "started", "attempt": 1, "server": "s", "run": "old"}]
    text = "".join(json.dumps(line) + "\n" for line in lines) + '{"job": "b", "event": "do'
    (tmp_path / "manifest.jsonl").write_text(text)
    states = Manifest(str(tmp_path)).read()
    assert {i: (s.status, s.attempts) for i, s in states.items()} == {
        "a": (DONE, 1), "b": (PENDING, 1), "c": (FAILED, 0)}
    assert states["a"].output == "a.safetensors" and states["c"].reason == "expected a video"
    assert not (tmp_path / "manifest.jsonl").exists() and (tmp_path / "manifest.jsonl.imported").read_text() == text
    (tmp_path / "manifest.jsonl").write_text(text)   # the same file put back: not imported a second time
    assert len(Manifest(str(tmp_path)).events()) == len(lines)


def test_retry_failed_puts_failed_jobs_back_unless_their_input_is_still_bad(tmp_path):
    m = Manifest(str(tmp_path))
    good, bad = Job("learn", {}, {}, "good"), Job("learn", {}, {}, "bad", problem="expected a video, got junk")
    m.add([good, bad])
    m.finish("good", m.claim("good", "s"), "s", Outcome(False, "execution error", retry=False), 3)
    m.add([good, bad])
    assert {i: s.status for i, s in m.read().items()} == {"good": FAILED, "bad": FAILED}, "a plain rerun retried"
    m.add([good, bad], retry_failed=True)
    states = m.read()
    assert (states["good"].status, states["good"].attempts) == (PENDING, 0)
    assert states["bad"].status == FAILED and "junk" in states["bad"].reason
    assert [e["event"] for e in m.events() if e["job"] == "good"][-1] == "requeued"


def test_reading_what_changed_costs_what_changed(tmp_path):
    m = Manifest(str(tmp_path))
    m.add([Job("learn", {}, {}, f"j{i}") for i in range(50)])
    seen, _ = m.changes(0)
    m.claim("j7", "s")
    seen2, changed = m.changes(seen)
    assert changed == {"j7": (RUNNING, m.run_id)} and seen2 == seen + 1
    assert m.changes(seen2) == (seen2, {})


def test_two_threads_placing_one_output_at_once_both_succeed(tmp_path):
    """The put race of the library's outputs: four threads put the same file at the same moment, 200 times. A
    temporary name per process (the library's old put_atomically) failed in 55 rounds of 200 here."""
    data = os.urandom(1 << 20)
    for r in range(200):
        destination = tmp_path / f"{r}.bin"
        barrier, results, errors = threading.Barrier(4), [], []

        def put():
            barrier.wait()
            try:
                results.append(place_bytes(str(destination), data))
            except Exception as e:  # the failure this test exists to catch
                errors.append(e)
        threads = [threading.Thread(target=put) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors and sorted(results) == [False, False, False, True], (r, errors, results)
        assert destination.read_bytes() == data
    assert sorted(os.listdir(tmp_path)) == sorted(f"{r}.bin" for r in range(200)), "a temporary file was left"


def test_the_library_runs_without_fcntl(tmp_path):
    """Windows has no fcntl: the command and its manifest must not need it (simulated: importing it fails)."""
    script = ("import sys; sys.modules['fcntl'] = None\n"
              "from reenact_cli.library.__main__ import main\n"
              "from reenact_cli.library.manifest import Manifest\n"
              "from reenact_cli.library.jobs import Job\n"
              f"m = Manifest({str(tmp_path)!r}); m.open_run(); m.add([Job('learn', {{}}, {{}}, 'j')])\n"
              "assert m.claim('j', 's') == 1; m.close_run()\n"
              f"sys.exit(main(['status', '--library', {str(tmp_path)!r}]))\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=PACK_ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "| j | learn |" in result.stdout and "running" in result.stdout


@pytest.mark.parametrize("error,down", [
    (urllib.error.URLError(ConnectionRefusedError(111, "refused")), True),
    (ConnectionResetError(104, "reset"), True),
    (urllib.error.URLError(socket.gaierror(-2, "no such host")), True),
    (urllib.error.URLError(TimeoutError("timed out")), False),
    (TimeoutError("timed out"), False),
    (FileNotFoundError(2, "no such file"), False),
    (urllib.error.HTTPError("http://x", 500, "server error", {}, None), False),
])
def test_only_a_failed_connection_marks_a_server_down(error, down):
    from reenact_cli.library.execute import connection_failed
    assert connection_failed(error) is down


def test_progress_in_a_plain_log_is_lines_not_carriage_returns():
    from reenact_cli.library.report import Progress
    from reenact_cli.library.scheduler import Scheduler
    from reenact_cli.library.servers import Server

    class Stub:  # the manifest's reading side, as the progress sees it
        run_id = "r"

        def changes(self, since):
            return since, {}
    servers = [Server("http://127.0.0.1:1", name="server0"), Server("http://127.0.0.1:2", name="server1")]
    scheduler = Scheduler(Stub(), servers, backend=None, attempts=1)
    scheduler.jobs = {"a": None, "b": None}
    for job_id, status in (("a", DONE), ("b", PENDING)):
        scheduler._set(job_id, (status, ""))
    scheduler.resting["server1"] = "p"
    scheduler.server_notes["server1"] = "resting after a stall: stalled"
    log = io.StringIO()
    progress = Progress(scheduler, stream=log, log_every=0)
    progress.show()
    progress.write("waiting for 1 job(s) that run x is running")
    progress.close()
    text = log.getvalue()
    assert "\r" not in text and "\x1b" not in text, repr(text)
    lines = text.splitlines()
    assert lines[0].startswith("library:") and "1/2" in lines[0] and "1 done" in lines[0] and "1 pending" in lines[0]
    assert lines[1].strip() == "server0: idle" and "server1: resting after a stall" in lines[2]
    assert "waiting for 1 job(s)" in text


def test_a_taken_output_name_is_refused_or_numbered(tmp_path, monkeypatch):
    from reenact_cli.run import parse_args
    monkeypatch.chdir(tmp_path)
    (tmp_path / "image.png").write_bytes(b"x")
    (tmp_path / "mine.mp4").write_bytes(b"the user's")
    with pytest.raises(SystemExit):
        parse_args(["--image", "image.png", "--reference", "r.mp4", "--output", "mine.mp4"])
    assert parse_args(["--image", "image.png", "--reference", "r.mp4"]).output == "reenact_output.mp4"
    (tmp_path / "reenact_output.mp4").write_bytes(b"an earlier run's")
    (tmp_path / "reenact_output_00001.mp4").write_bytes(b"another")
    assert parse_args(["--image", "image.png", "--reference", "r.mp4"]).output == "reenact_output_00002.mp4"

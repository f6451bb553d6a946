"""The manifest: one JSON object per line, appended under a file lock, never rewritten; the source of truth.

Each line is an event of one job: added, started (a claim: attempt, server, run), attempt_failed (why), released
(Ctrl-C gave it back), done (output, timings) or failed (why, once the attempts are spent or before any server
time). A job's state is the fold of its lines. Two runs never do one job: a run claims a job under the lock, and a
claim stands while the run that made it is alive, which its own lock file says (an OS lock, freed when the process
ends however it ends, SIGKILL included), so a crashed run's jobs are taken again by the next.
"""
import fcntl
import json
import os
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field

PENDING, RUNNING, DONE, FAILED = "pending", "running", "done", "failed"


@dataclass
class JobState:
    id: str
    kind: str = ""
    inputs: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    status: str = PENDING
    attempts: int = 0
    run: str = ""
    server: str = ""
    output: str = ""
    reason: str = ""
    history: list = field(default_factory=list)   # every attempt: server, outcome, reason, seconds


class Manifest:
    def __init__(self, library: str):
        self.library = os.path.abspath(library)
        os.makedirs(os.path.join(self.library, "runs"), exist_ok=True)
        self.path = os.path.join(self.library, "manifest.jsonl")
        self.run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._run_lock = None

    # --- this run's liveness --------------------------------------------------------------------------------
    def open_run(self):
        """Hold this run's lock file until close_run or the process ends."""
        self._run_lock = open(os.path.join(self.library, "runs", f"{self.run_id}.lock"), "w")
        fcntl.flock(self._run_lock, fcntl.LOCK_EX)

    def close_run(self):
        if self._run_lock is not None:
            path = self._run_lock.name
            self._run_lock.close()
            self._run_lock = None
            os.unlink(path)

    def run_alive(self, run_id: str) -> bool:
        if run_id == self.run_id:
            return self._run_lock is not None
        path = os.path.join(self.library, "runs", f"{run_id}.lock")
        try:
            with open(path, "a") as f:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return True
                return False
        except OSError:
            return False

    # --- lines --------------------------------------------------------------------------------------------
    @contextmanager
    def locked(self):
        with open(self.path + ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _append(self, records: list[dict]):
        with open(self.path, "a") as f:
            for record in records:
                f.write(json.dumps(dict(record, t=round(time.time(), 3))) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def append(self, *records: dict):
        with self.locked():
            self._append(list(records))

    def read(self) -> dict[str, JobState]:
        """The fold of every line, {job id: JobState}; a torn last line (a crash mid-write) is ignored."""
        states: dict[str, JobState] = {}
        if not os.path.exists(self.path):
            return states
        with open(self.path) as f:
            for line in f:
                try:
                    event = json.loads(line)
                except json.JSONDecodeError:
                    continue
                fold(states.setdefault(event["job"], JobState(event["job"])), event)
        return states

    # --- the operations the scheduler uses ------------------------------------------------------------------
    def add(self, jobs):
        """Record jobs not yet in the manifest (pending, or failed at once when their inputs cannot be used)."""
        with self.locked():
            known = self.read()
            lines = []
            for job in jobs:
                if job.id in known:
                    continue
                lines.append({"job": job.id, "event": "added", "kind": job.kind, "inputs": job.inputs,
                              "settings": job.settings})
                if job.problem:
                    lines.append({"job": job.id, "event": "failed", "reason": job.problem, "run": self.run_id})
            self._append(lines)

    def claim(self, job_id: str, server: str) -> int | None:
        """Take the job for this run on `server`; its attempt number, or None when it is done, failed, or claimed
        by a run that is still alive."""
        with self.locked():
            state = self.read().get(job_id)
            if state is None or state.status in (DONE, FAILED):
                return None
            if state.status == RUNNING and self.run_alive(state.run) and state.run != self.run_id:
                return None
            attempt = state.attempts + 1
            self._append([{"job": job_id, "event": "started", "attempt": attempt, "server": server,
                           "run": self.run_id}])
            return attempt

    def finish(self, job_id: str, attempt: int, server: str, outcome, attempts_allowed: int):
        """Record an attempt's outcome: done, failed for good, or failed and pending again."""
        base = {"job": job_id, "attempt": attempt, "server": server, "run": self.run_id,
                "seconds": outcome.seconds}
        if outcome.ok:
            self.append(dict(base, event="done", output=outcome.output))
            return DONE
        lines = [dict(base, event="attempt_failed", reason=outcome.reason)]
        final = not outcome.retry or attempt >= attempts_allowed
        if final:
            lines.append({"job": job_id, "event": "failed", "run": self.run_id,
                          "reason": f"{outcome.reason} (after {attempt} attempt{'s' * (attempt > 1)})"})
        self.append(*lines)
        return FAILED if final else PENDING

    def release(self, job_id: str, attempt: int, server: str, why: str):
        """Give a claimed job back without spending an attempt (Ctrl-C)."""
        self.append({"job": job_id, "event": "released", "attempt": attempt, "server": server, "run": self.run_id,
                     "reason": why})


def fold(state: JobState, event: dict):
    kind = event["event"]
    if kind == "added":
        state.kind, state.inputs, state.settings = event["kind"], event["inputs"], event["settings"]
    elif kind == "started":
        state.status, state.attempts = RUNNING, event["attempt"]
        state.run, state.server = event["run"], event["server"]
    elif kind == "attempt_failed":
        state.status = PENDING
        state.history.append({"attempt": event["attempt"], "server": event["server"], "outcome": "failed",
                              "reason": event["reason"], "seconds": event.get("seconds", {})})
    elif kind == "released":
        state.status, state.attempts = PENDING, event["attempt"] - 1
        state.history.append({"attempt": event["attempt"], "server": event["server"], "outcome": "released",
                              "reason": event["reason"]})
    elif kind == "done":
        state.status, state.output, state.server = DONE, event["output"], event["server"]
        state.history.append({"attempt": event["attempt"], "server": event["server"], "outcome": "done",
                              "seconds": event.get("seconds", {})})
    elif kind == "failed":
        state.status, state.reason = FAILED, event["reason"]

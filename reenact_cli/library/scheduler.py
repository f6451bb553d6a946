"""The one code path of both back-ends: which job goes to which server, what an outcome does to the manifest, and
when the run is over. A back-end only runs attempts: `run_attempt(server, job, cancelled) -> Outcome`.

- At most one job in flight per server: each server's worker asks for its next job only when the last one ended.
- A failed attempt is retried on another server where there is one (a job is not given again to a server it failed
  on while another live server has not tried it), up to `attempts` in all; then it is failed, with the reason.
- A server that died or stopped answering gets no more jobs; the jobs left pending when every server is gone stay
  pending in the manifest, and a rerun goes on with them.
- Ctrl-C: running attempts are cancelled on their servers and their jobs given back (no attempt spent).
"""
import threading
import time

from .manifest import DONE, FAILED, PENDING, RUNNING
from .execute import CANCELLED
from .jobs import Outcome


class Scheduler:
    def __init__(self, manifest, servers, run_attempt, attempts: int, on_change=None):
        self.manifest = manifest
        self.servers = servers
        self.run_attempt = run_attempt
        self.attempts = attempts
        self.on_change = on_change or (lambda: None)
        self.lock = threading.Lock()
        self.cancel = threading.Event()
        self.jobs: dict = {}
        self.failed_on: dict[str, set] = {}
        self.live = {s.name for s in servers}
        self.running: dict[str, tuple] = {}     # server name -> (job, attempt, started)
        self.server_notes: dict[str, str] = {}

    def pending(self):
        states = self.manifest.read()
        return [j for j in self.jobs.values()
                if states[j.id].status == PENDING
                or (states[j.id].status == RUNNING and not self.manifest.run_alive(states[j.id].run))]

    def next_job(self, server):
        """The next job for `server`, claimed in the manifest; None when there is none for it now."""
        with self.lock:
            for job in self.pending():
                tried = self.failed_on.get(job.id, set())
                if server.name in tried and self.live - tried:
                    continue
                attempt = self.manifest.claim(job.id, server.url)
                if attempt is not None:
                    self.running[server.name] = (job, attempt, time.monotonic())
                    return job, attempt
            return None

    def finished(self, server, job, attempt, outcome):
        with self.lock:
            self.running.pop(server.name, None)
            if outcome.reason == CANCELLED:
                self.manifest.release(job.id, attempt, server.url, outcome.reason)
            else:
                status = self.manifest.finish(job.id, attempt, server.url, outcome, self.attempts)
                if status == PENDING:
                    self.failed_on.setdefault(job.id, set()).add(server.name)
            if outcome.server_down:
                self.live.discard(server.name)
                self.server_notes[server.name] = outcome.reason
        self.on_change()

    def over(self) -> bool:
        """Nothing left that a live server could take, and nothing running."""
        with self.lock:
            if self.running:
                return False
            return not self.live or self.cancel.is_set() or not self.pending()

    def worker(self, server):
        """One server's loop: one job at a time until the run is over or the server is gone."""
        while not self.cancel.is_set() and server.name in self.live:
            picked = self.next_job(server)
            if picked is None:
                if self.over():
                    return
                time.sleep(0.2)
                continue
            job, attempt = picked
            self.on_change()
            try:
                outcome = self.run_attempt(server, job, self.cancel.is_set)
            except Exception as e:  # a bug or an unforeseen failure: recorded, never a job left running
                outcome = Outcome(False, f"the attempt failed here: {type(e).__name__}: {e}")
            self.finished(server, job, attempt, outcome)

    def run(self, jobs) -> dict:
        """Run `jobs` (those not done already) over the servers; returns the manifest's states."""
        self.jobs = {job.id: job for job in jobs}
        self.manifest.add(jobs)
        ended = {s.name: threading.Event() for s in self.servers}

        def work(server):
            try:
                self.worker(server)
            finally:
                ended[server.name].set()
        for server in self.servers:
            threading.Thread(target=work, args=(server,), daemon=True, name=server.name).start()
        # Events, not Thread.join: a KeyboardInterrupt inside join() can leave a live thread reported as ended
        # (CPython before 3.13), and the run would exit before its workers give their jobs back.
        try:
            for event in ended.values():
                while not event.wait(0.5):
                    pass
        except KeyboardInterrupt:
            self.cancel.set()
            deadline = time.monotonic() + 60
            for event in ended.values():
                event.wait(max(0.0, deadline - time.monotonic()))
            raise
        return self.manifest.read()


def counts(states: dict, ids) -> dict:
    out = {DONE: 0, RUNNING: 0, FAILED: 0, PENDING: 0}
    for job_id in ids:
        out[states[job_id].status] += 1
    return out

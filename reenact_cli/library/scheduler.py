"""The one code path of both back-ends: which job goes to which server, what an outcome does to the manifest and to
the server, and when the run is over. A back-end runs attempts where the server is (`attempt`) and says how a
server is after a stall (`server_state`); the driver reads the inputs and stores the outputs (jobs.job_files,
jobs.store_output), so the library's folder is only ever touched here.

- At most one job in flight per server: each server's worker asks for its next job only when the last one ended.
- A failed attempt is retried on another server where there is one (a job is not given again to a server it failed
  on while another usable server has not tried it), up to `attempts` in all; then it is failed, with the reason.
- A server whose connection failed is down: no more jobs. A server that stalled rests: it takes no job until it
  answers again and no longer holds the stalled prompt (it is asked to drop it), so the job is not run twice.
- Jobs held by another live run are waited for (said once), so two runs on one library both end when all is done.
- Ctrl-C: running attempts are cancelled on their servers and their jobs given back (no attempt spent).
- The state of this run's jobs is read once, then only what changed (the manifest's numbered events).
"""
import threading
import time

from . import jobs as job_kit
from .execute import BUSY, CANCELLED, DOWN
from .jobs import Outcome
from .manifest import PENDING, RUNNING

POLL = 0.2          # seconds between two looks for a job when there is none
REST_POLL = 1.0     # seconds between two looks at a resting server


class Scheduler:
    def __init__(self, manifest, servers, backend, attempts: int, on_change=None, notice=print):
        self.manifest = manifest
        self.servers = servers
        self.backend = backend
        self.attempts = attempts
        self.on_change = on_change or (lambda: None)
        self.notice = notice
        self.lock = threading.Lock()
        self.cancel = threading.Event()
        self.jobs: dict = {}
        self.failed_on: dict[str, set] = {}
        self.live = {s.name for s in servers}
        self.resting: dict[str, str] = {}       # server name -> the prompt it may still hold
        self.running: dict[str, tuple] = {}     # server name -> (job, attempt, started)
        self.server_notes: dict[str, str] = {}
        self.view: dict[str, tuple] = {}        # job id -> (status, run), kept up to date from the events
        self.seen = 0
        self.waiting_for: set[str] = set()      # runs already named as holding jobs of ours
        self.tally: dict[str, int] = {}         # status -> how many of this run's jobs
        self.open: dict[str, None] = {}         # this run's jobs pending or running, in the command's order

    # --- the state of this run's jobs ---------------------------------------------------------------------
    def refresh(self):
        """Take in the events since the last look: what it costs is what changed."""
        self.seen, changed = self.manifest.changes(self.seen)
        for job_id, state in changed.items():
            if job_id in self.jobs:
                self._set(job_id, state)

    def _set(self, job_id, state):
        old = self.view.get(job_id)
        if old is not None:
            self.tally[old[0]] -= 1
        self.view[job_id] = state
        self.tally[state[0]] = self.tally.get(state[0], 0) + 1
        if state[0] in (PENDING, RUNNING):
            self.open.setdefault(job_id)
        else:
            self.open.pop(job_id, None)

    def pending(self):
        """This run's jobs a server may take now, in order (pending, or running under a run that is gone); a
        generator, so a look for the next job stops at the first."""
        self.refresh()
        alive = {}
        for job_id in self.open:   # not changed while this runs: refresh() is called under the same lock
            status, run = self.view[job_id]
            if status == PENDING:
                yield self.jobs[job_id]
            elif run != self.manifest.run_id:
                if run not in alive:
                    alive[run] = self.manifest.run_alive(run)
                if not alive[run]:
                    yield self.jobs[job_id]

    def held_elsewhere(self) -> dict[str, int]:
        """{run: how many of this run's jobs it holds} for other runs that are alive."""
        held = {}
        for status, run in (self.view[i] for i in self.open):
            if status == RUNNING and run != self.manifest.run_id:
                held[run] = held.get(run, 0) + 1
        return {run: n for run, n in held.items() if self.manifest.run_alive(run)}

    # --- one server's loop ----------------------------------------------------------------------------------
    def next_job(self, server):
        """The next job for `server`, claimed in the manifest; None when there is none for it now."""
        with self.lock:
            usable = self.live - set(self.resting)
            for job in self.pending():
                tried = self.failed_on.get(job.id, set())
                if server.name in tried and usable - tried:
                    continue
                attempt = self.manifest.claim(job.id, server.url)
                if attempt is not None:
                    self.running[server.name] = (job, attempt, time.monotonic())
                    return job, attempt
            return None

    def attempt(self, server, job) -> Outcome:
        """One attempt on the back-end, its inputs read and its output stored here."""
        try:
            files = job_kit.job_files(job, self.manifest.library)
        except OSError as e:
            return Outcome(False, f"cannot read the job's input here: {e}", retry=False)
        try:
            outcome = self.backend.attempt(server, job, files, self.cancel.is_set)
        except Exception as e:  # a bug or an unforeseen failure: recorded, never a job left running
            return Outcome(False, f"the attempt failed here: {type(e).__name__}: {e}")
        if outcome.ok:
            try:
                outcome.output = job_kit.store_output(self.manifest.library, job, outcome.data)
            except OSError as e:
                outcome = Outcome(False, f"cannot store the output in the library: {e}", seconds=outcome.seconds)
            outcome.data = None
        return outcome

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
            elif outcome.stalled:
                self.resting[server.name] = outcome.prompt_id
                self.server_notes[server.name] = f"resting after a stall: {outcome.reason}"
        self.on_change()

    def rest(self, server):
        """A resting server: back when it no longer holds the stalled prompt, down when nothing listens there."""
        state = self.backend.server_state(server, self.resting[server.name])
        with self.lock:
            if state == DOWN:
                self.live.discard(server.name)
                self.server_notes[server.name] = "down: nothing answers at its address after a stall"
            elif state != BUSY:
                del self.resting[server.name]
                self.server_notes[server.name] = "back after a stall"
        self.on_change()
        return state

    def over(self) -> bool:
        """Nothing running, and nothing left that a usable server could take (jobs held by another live run are
        waited for)."""
        with self.lock:
            if self.running:
                return False
            if self.cancel.is_set() or not self.live - set(self.resting):
                return True
            if next(self.pending(), None) is not None:
                return False
            held = self.held_elsewhere()
            for run in set(held) - self.waiting_for:
                self.waiting_for.add(run)
                self.notice(f"waiting for {held[run]} job(s) that {self.manifest.run_info(run)} is running")
            return not held

    def worker(self, server):
        """One server's loop: one job at a time until the run is over or the server is gone."""
        while not self.cancel.is_set() and server.name in self.live:
            if server.name in self.resting:
                if self.rest(server) == BUSY:
                    if self.over():
                        return
                    time.sleep(REST_POLL)
                continue
            picked = self.next_job(server)
            if picked is None:
                if self.over():
                    return
                time.sleep(POLL)
                continue
            job, attempt = picked
            self.on_change()
            self.finished(server, job, attempt, self.attempt(server, job))

    def run(self, jobs, retry_failed: bool = False) -> dict:
        """Run `jobs` (those not done already) over the servers; returns the manifest's states."""
        self.jobs = {job.id: job for job in jobs}
        self.manifest.add(jobs, retry_failed=retry_failed)
        self.seen, _ = self.manifest.changes(1 << 62)   # first the newest event, then the states: none is missed
        for job_id, state in self.manifest.statuses(self.jobs).items():
            self._set(job_id, state)
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
                    self.on_change()
        except KeyboardInterrupt:
            self.cancel.set()
            deadline = time.monotonic() + 60
            for event in ended.values():
                event.wait(max(0.0, deadline - time.monotonic()))
            raise
        return self.manifest.read()

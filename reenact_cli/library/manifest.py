"""The manifest: an SQLite database in the library (manifest.sqlite), the source of truth.

- `jobs` holds each job's state; `events` its history (added, started, attempt_failed, released, done, failed,
  requeued), one row per event, numbered, so a reader asks only for what changed since the number it last saw.
- Every change is one transaction (BEGIN IMMEDIATE: one writer at a time, across threads and processes): a claim
  reads the job's state and records the start together, so two runs never take one job, and a crash at any point
  leaves the database as it was before or after a whole change, never between.
- `runs` says which runs are alive: a run's row names its host, process id and that process's start time, and a
  heartbeat. On its own host a run is alive while that process is; on another, while its heartbeat is fresh. So a
  job claimed by a run that was SIGKILLed is taken again, with no lock file of our own.
- A library made before this database (manifest.jsonl, one JSON event per line) is imported once, on first use,
  and the old file is renamed manifest.jsonl.imported.

SQLite's locking needs a filesystem whose locks work: a local disk (README, "The motion library").
"""
import json
import os
import socket
import sqlite3
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field

PENDING, RUNNING, DONE, FAILED = "pending", "running", "done", "failed"
HEARTBEAT_SECONDS = 5.0
LEASE_SECONDS = 30.0    # a run on another host whose heartbeat is older than this is taken for dead
BUSY_SECONDS = 120.0    # how long a change waits for another writer's transaction

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, kind TEXT, inputs TEXT, settings TEXT, status TEXT,
    attempts INTEGER DEFAULT 0, run TEXT DEFAULT '', server TEXT DEFAULT '', output TEXT DEFAULT '',
    reason TEXT DEFAULT '');
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status);
CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT, job TEXT, event TEXT, attempt INTEGER,
    server TEXT, run TEXT, reason TEXT, output TEXT, seconds TEXT, t REAL);
CREATE INDEX IF NOT EXISTS events_by_job ON events (job);
CREATE TABLE IF NOT EXISTS runs (id TEXT PRIMARY KEY, host TEXT, pid INTEGER, process_started REAL,
    heartbeat REAL, ended INTEGER DEFAULT 0);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""


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


def process_started(pid: int) -> float | None:
    """The start time of process `pid`, or None when there is none (psutil: ComfyUI's own requirement)."""
    import psutil
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


class Manifest:
    def __init__(self, library: str):
        self.library = os.path.abspath(library)
        os.makedirs(self.library, exist_ok=True)
        self.path = os.path.join(self.library, "manifest.sqlite")
        self.run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.host = socket.gethostname()
        self._local = threading.local()
        self._beating = threading.Event()
        self._db().executescript(SCHEMA)
        self._import_jsonl()

    # --- the database -------------------------------------------------------------------------------------------
    def _db(self) -> sqlite3.Connection:
        """This thread's connection (sqlite3 connections are not shared between threads)."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=BUSY_SECONDS, isolation_level=None)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            self._local.db = db
        return db

    @contextmanager
    def change(self):
        """One transaction: committed whole when the block ends, rolled back whole when it raises."""
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _event(self, db, job: str, event: str, attempt=None, server="", run=None, reason="", output="",
               seconds=None):
        db.execute("INSERT INTO events (job, event, attempt, server, run, reason, output, seconds, t) "
                   "VALUES (?,?,?,?,?,?,?,?,?)", (job, event, attempt, server, self.run_id if run is None else run,
                                                  reason, output, json.dumps(seconds or {}), round(time.time(), 3)))

    # --- this run's liveness --------------------------------------------------------------------------------
    def open_run(self):
        """Record this run as alive, and keep its heartbeat fresh until close_run."""
        pid = os.getpid()
        with self.change() as db:
            db.execute("INSERT INTO runs (id, host, pid, process_started, heartbeat) VALUES (?,?,?,?,?)",
                       (self.run_id, self.host, pid, process_started(pid), time.time()))
        self._beating.set()
        threading.Thread(target=self._heartbeat, daemon=True, name="manifest heartbeat").start()

    def _heartbeat(self):
        while self._beating.is_set():
            time.sleep(HEARTBEAT_SECONDS)
            if self._beating.is_set():
                with self.change() as db:
                    db.execute("UPDATE runs SET heartbeat = ? WHERE id = ?", (time.time(), self.run_id))

    def close_run(self):
        self._beating.clear()
        with self.change() as db:
            db.execute("UPDATE runs SET ended = 1 WHERE id = ?", (self.run_id,))

    def run_alive(self, run_id: str, db=None) -> bool:
        if run_id == self.run_id:
            return self._beating.is_set()
        row = (db or self._db()).execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None or row["ended"]:
            return False
        if row["host"] == self.host:
            started = process_started(row["pid"])
            return started is not None and (row["process_started"] is None
                                            or abs(started - row["process_started"]) < 1.0)
        return time.time() - row["heartbeat"] < LEASE_SECONDS

    def run_info(self, run_id: str) -> str:
        row = self._db().execute("SELECT host, pid FROM runs WHERE id = ?", (run_id,)).fetchone()
        return f"run {run_id}" + (f" (host {row['host']}, process {row['pid']})" if row else "")

    # --- reading ---------------------------------------------------------------------------------------------
    def statuses(self, ids=None) -> dict[str, tuple[str, str]]:
        """{job id: (status, run)} of every job, or of `ids`."""
        rows = self._db().execute("SELECT id, status, run FROM jobs").fetchall()
        wanted = None if ids is None else set(ids)
        return {r["id"]: (r["status"], r["run"]) for r in rows if wanted is None or r["id"] in wanted}

    def changes(self, since: int) -> tuple[int, dict[str, tuple[str, str]]]:
        """(the newest event number, {job id: (status, run)} of the jobs with an event after `since`)."""
        db = self._db()
        top = db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]
        rows = db.execute("SELECT j.id, j.status, j.run FROM jobs j WHERE j.id IN "
                          "(SELECT DISTINCT job FROM events WHERE seq > ? AND seq <= ?)", (since, top)).fetchall()
        return top, {r["id"]: (r["status"], r["run"]) for r in rows}

    def events(self) -> list[dict]:
        """Every event, oldest first, as a dict (job, event, attempt, server, run, reason, output, seconds)."""
        rows = self._db().execute("SELECT * FROM events ORDER BY seq").fetchall()
        return [dict(dict(r), seconds=json.loads(r["seconds"] or "{}")) for r in rows]

    def read(self) -> dict[str, JobState]:
        """Every job's state with its history, {job id: JobState}."""
        db = self._db()
        states = {r["id"]: JobState(r["id"], r["kind"], json.loads(r["inputs"]), json.loads(r["settings"]),
                                    r["status"], r["attempts"], r["run"], r["server"], r["output"], r["reason"])
                  for r in db.execute("SELECT * FROM jobs")}
        for e in self.events():
            if e["event"] in ("attempt_failed", "released", "done") and e["job"] in states:
                outcome = {"attempt_failed": "failed"}.get(e["event"], e["event"])
                states[e["job"]].history.append({"attempt": e["attempt"], "server": e["server"], "outcome": outcome,
                                                 "reason": e["reason"], "seconds": e["seconds"]})
        return states

    # --- the operations the scheduler uses ------------------------------------------------------------------
    def add(self, jobs, retry_failed: bool = False):
        """Record jobs not yet in the manifest: pending, or failed at once when their inputs cannot be used. With
        `retry_failed`, jobs of `jobs` that failed before are pending again (their inputs checked anew)."""
        with self.change() as db:
            for job in jobs:
                row = db.execute("SELECT status FROM jobs WHERE id = ?", (job.id,)).fetchone()
                if row is None:
                    db.execute("INSERT INTO jobs (id, kind, inputs, settings, status) VALUES (?,?,?,?,?)",
                               (job.id, job.kind, json.dumps(job.inputs), json.dumps(job.settings),
                                FAILED if job.problem else PENDING))
                    self._event(db, job.id, "added")
                    if job.problem:
                        db.execute("UPDATE jobs SET reason = ? WHERE id = ?", (job.problem, job.id))
                        self._event(db, job.id, "failed", reason=job.problem)
                elif retry_failed and row["status"] == FAILED:
                    if job.problem:
                        db.execute("UPDATE jobs SET reason = ? WHERE id = ?", (job.problem, job.id))
                        self._event(db, job.id, "failed", reason=job.problem)
                    else:
                        db.execute("UPDATE jobs SET status = ?, attempts = 0, reason = '' WHERE id = ?",
                                   (PENDING, job.id))
                        self._event(db, job.id, "requeued", reason="--retry-failed")

    def claim(self, job_id: str, server: str) -> int | None:
        """Take the job for this run on `server`; its attempt number, or None when it is done, failed, or held by
        another run that is still alive."""
        with self.change() as db:
            row = db.execute("SELECT status, run, attempts FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None or row["status"] in (DONE, FAILED):
                return None
            if row["status"] == RUNNING and row["run"] != self.run_id and self.run_alive(row["run"], db):
                return None
            attempt = row["attempts"] + 1
            db.execute("UPDATE jobs SET status = ?, attempts = ?, run = ?, server = ? WHERE id = ?",
                       (RUNNING, attempt, self.run_id, server, job_id))
            self._event(db, job_id, "started", attempt, server)
            return attempt

    def finish(self, job_id: str, attempt: int, server: str, outcome, attempts_allowed: int):
        """Record an attempt's outcome: done, failed for good, or failed and pending again."""
        with self.change() as db:
            if outcome.ok:
                db.execute("UPDATE jobs SET status = ?, output = ?, server = ? WHERE id = ?",
                           (DONE, outcome.output, server, job_id))
                self._event(db, job_id, "done", attempt, server, output=outcome.output, seconds=outcome.seconds)
                return DONE
            self._event(db, job_id, "attempt_failed", attempt, server, reason=outcome.reason, seconds=outcome.seconds)
            if outcome.retry and attempt < attempts_allowed:
                db.execute("UPDATE jobs SET status = ? WHERE id = ?", (PENDING, job_id))
                return PENDING
            reason = f"{outcome.reason} (after {attempt} attempt{'s' * (attempt > 1)})"
            db.execute("UPDATE jobs SET status = ?, reason = ? WHERE id = ?", (FAILED, reason, job_id))
            self._event(db, job_id, "failed", reason=reason)
            return FAILED

    def release(self, job_id: str, attempt: int, server: str, why: str):
        """Give a claimed job back without spending an attempt (Ctrl-C)."""
        with self.change() as db:
            db.execute("UPDATE jobs SET status = ?, attempts = ? WHERE id = ?", (PENDING, attempt - 1, job_id))
            self._event(db, job_id, "released", attempt, server, reason=why)

    # --- a library made before the database -------------------------------------------------------------------
    def _import_jsonl(self):
        """Fold manifest.jsonl (the format before this database) into it, once, in one transaction; then rename the
        old file. Its running jobs come in pending: the runs that held them used a lock of their own, gone with them."""
        old = os.path.join(self.library, "manifest.jsonl")
        if not os.path.exists(old):
            return
        with self.change() as db:
            if not db.execute("SELECT 1 FROM meta WHERE key = 'imported_jsonl'").fetchone():
                self._fold_jsonl(db, old)
                db.execute("INSERT INTO meta (key, value) VALUES ('imported_jsonl', ?)", (str(time.time()),))
        if not os.path.exists(old + ".imported"):
            os.rename(old, old + ".imported")

    def _fold_jsonl(self, db, old: str):
        with open(old) as f:
            for line in f:
                try:
                    e = json.loads(line)
                except json.JSONDecodeError:  # a torn line of a crashed write
                    continue
                job, kind = e.get("job"), e.get("event")
                if kind == "added":
                    db.execute("INSERT OR IGNORE INTO jobs (id, kind, inputs, settings, status) VALUES (?,?,?,?,?)",
                               (job, e["kind"], json.dumps(e["inputs"]), json.dumps(e["settings"]), PENDING))
                elif kind == "started":
                    db.execute("UPDATE jobs SET status = ?, attempts = ?, server = ? WHERE id = ?",
                               (PENDING, e["attempt"], e["server"], job))
                elif kind == "attempt_failed":
                    db.execute("UPDATE jobs SET status = ? WHERE id = ?", (PENDING, job))
                elif kind == "released":
                    db.execute("UPDATE jobs SET status = ?, attempts = ? WHERE id = ?", (PENDING, e["attempt"] - 1,
                                                                                         job))
                elif kind == "done":
                    db.execute("UPDATE jobs SET status = ?, output = ?, server = ? WHERE id = ?",
                               (DONE, e["output"], e["server"], job))
                elif kind == "failed":
                    db.execute("UPDATE jobs SET status = ?, reason = ? WHERE id = ?", (FAILED, e["reason"], job))
                else:
                    continue
                self._event(db, job, kind, e.get("attempt"), e.get("server", ""), e.get("run", ""),
                            e.get("reason", ""), e.get("output", ""), e.get("seconds"))

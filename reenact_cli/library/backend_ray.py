"""The Ray back-end: one actor per server, which starts its ComfyUI (one per GPU, Ray giving it that GPU) or attaches
to a running one, and runs each attempt there with the same code as the local back-end (execute.run_job). The
scheduler and the manifest stay in the driver, as with the local back-end.

`ray.init()` on this machine, or an existing cluster's address (--ray-address, or RAY_ADDRESS) unchanged. Restarts
come from Ray: a killed actor is restarted (max_restarts), starts a fresh server, and the scheduler retries the job
it was running elsewhere. Ray is an optional extra (`pip install ray`), never a requirement of the pack.
"""
import os
import threading
import time
import uuid

from .execute import run_job
from .jobs import Job, Outcome
from .servers import Server, default_models_dir, start_servers, stop_servers

ACTOR_RESTARTS = 2
NAMESPACE = "reenact-library"   # actors are named "<server name>" in it, so an operator (or a test) can find them


def _ray():
    try:
        import ray
    except ImportError:
        raise SystemExit("expected Ray for --backend ray, got none installed: pip install ray") from None
    return ray


class ServerActor:
    """Lives in a Ray worker: its server (started here, or the URL it attaches to) and the attempts run on it.
    Threaded (max_concurrency 2) so that `cancel` reaches an attempt while `run` runs it."""

    def __init__(self, url, models_dir, workdir, toy, gpu):
        self.started = []
        self.cancelled: set[str] = set()
        self.lock = threading.Lock()
        if url is None:
            base = os.path.join(workdir, f"actor-{os.getpid()}")
            os.makedirs(base, exist_ok=True)
            # Ray sets CUDA_VISIBLE_DEVICES to this actor's GPU: the server takes it as its first, so no --cuda-device.
            self.started = start_servers(1, base, ["0"] if gpu else None, toy, models_dir=models_dir,
                                         die_with_parent=True)
            url = self.started[0].url
        self.server = Server(url, models_dir)

    def url(self):
        return self.server.url

    def pid(self):
        return os.getpid()

    def run(self, record, library, stall_timeout, token):
        """One attempt; `token` names it to `cancel`, which may come before or while it runs."""
        def cancelled():
            with self.lock:
                return token in self.cancelled
        try:
            return run_job(Job(**record), self.server.url, self.server.models_dir, library, stall_timeout, cancelled)
        finally:
            with self.lock:
                self.cancelled.discard(token)

    def cancel(self, token):
        """Ctrl-C in the driver: the attempt stops its prompt on the server (run_job's own cancel path)."""
        with self.lock:
            self.cancelled.add(token)

    def stop(self):
        stop_servers(self.started)


class RayBackend:
    def __init__(self, args, library):
        self.args, self.library = args, library
        self.actors: dict[str, object] = {}
        self.ray = _ray()

    def start(self, servers, count, workdir):
        """Actors for the given URLs and `count` started servers; returns their Server entries (name -> actor)."""
        ray = self.ray
        if not ray.is_initialized():
            address = self.args.ray_address or os.environ.get("RAY_ADDRESS")
            ray.init(address=address, namespace=NAMESPACE, include_dashboard=False,
                     **({} if address else {"num_cpus": os.cpu_count()}))
        remote = ray.remote(max_restarts=ACTOR_RESTARTS, max_task_retries=0, max_concurrency=2)(ServerActor)
        devices = self.args.cuda_devices.split(",") if self.args.cuda_devices else None
        models = (servers[0].models_dir if servers
                  else default_models_dir(self.args.models_dir, self.args.toy, workdir))
        entries = []
        for server in servers:
            actor = remote.options(num_cpus=0, name=server.name).remote(server.url, server.models_dir, workdir,
                                                                         self.args.toy, False)
            entries.append((server.name, actor))
        for i in range(count):
            name = f"actor{i}" + (" (GPU)" if devices else " (CPU)")
            actor = remote.options(num_cpus=1, num_gpus=1 if devices else 0, name=name).remote(
                None, models, workdir, self.args.toy, bool(devices))
            entries.append((name, actor))
        out = []
        for name, actor in entries:
            self.actors[name] = actor
            out.append(Server(ray.get(actor.url.remote()), models, name=name))
        return out

    def __call__(self, server, job, cancelled) -> Outcome:
        ray = self.ray
        actor = self.actors[server.name]
        token = uuid.uuid4().hex
        ref = actor.run.remote(job.as_record(), self.library, self.args.stall_timeout, token)
        asked = False
        while not ray.wait([ref], timeout=0.5)[0]:
            if cancelled() and not asked:
                actor.cancel.remote(token)
                asked = True
        try:
            return ray.get(ref)
        except ray.exceptions.RayActorError as e:
            self._refresh(server)
            return Outcome(False, f"the actor of {server.name} died during the job ({type(e).__name__}); Ray "
                                  "restarts it")

    def _refresh(self, server, timeout=300):
        """After Ray restarts an actor its server is a new one: take its URL."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                server.url = self.ray.get(self.actors[server.name].url.remote(), timeout=60)
                return
            except self.ray.exceptions.RayActorError:
                time.sleep(1)

    def stop(self):
        for actor in self.actors.values():
            try:
                self.ray.get(actor.stop.remote(), timeout=60)
            except Exception:  # an actor already gone has nothing to stop
                pass
        self.ray.shutdown()

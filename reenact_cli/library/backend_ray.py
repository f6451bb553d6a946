"""The Ray back-end: one actor per server, on the server's node. An actor starts its ComfyUI (one per GPU, Ray giving
it that GPU) or attaches to a running one, and does everything that touches the server there: the check at the
start, each attempt (execute.run_job: upload, queue, follow, read the output), Cancel, and the look at a server
after a stall. The driver never connects to a server: inputs go to the actor and outputs come back as bytes, and the
scheduler and the manifest stay in the driver, as with the local back-end.

`ray.init()` on this machine, or an existing cluster's address (--ray-address, or RAY_ADDRESS) unchanged. A server
given by URL gets its actor on the node with that address (loopback: the driver's node). Restarts come from Ray: a
killed actor is restarted (max_restarts), starts a fresh server, and the scheduler retries the job it was running
elsewhere; an actor dead for good is marked down at once. Every wait on Ray has a timeout, and each timeout is a
named reason in the manifest. Ray is an optional extra (`pip install ray`), never a requirement of the pack.
"""
import os
import threading
import time
import urllib.parse
import uuid

from .execute import BUSY, DOWN, run_job, server_state
from .jobs import Job, Outcome
from .servers import Server, default_models_dir, prepare, start_servers, stop_servers

ACTOR_RESTARTS = 2
NAMESPACE = "reenact-library"   # actors are named "<server name>" in it, so an operator (or a test) can find them
START_SECONDS = 600             # an actor's server start (a model-less ComfyUI starts in well under a minute)
CALL_SECONDS = 120              # a check or a look at a server
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _ray():
    try:
        import ray
    except ImportError:
        raise SystemExit("expected Ray for --backend ray, got none installed: pip install ray") from None
    return ray


class ServerActor:
    """Lives in a Ray worker on the server's node: its server (started here, or the URL it attaches to) and
    everything done to it. Threaded (max_concurrency 2) so that `cancel` reaches an attempt while `run` runs it."""

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

    def node(self):
        """The Ray node this actor (and its server) is on."""
        import ray
        return ray.get_runtime_context().get_node_id()

    def check(self, toy, checkpoint):
        return prepare(self.server.url, self.server.models_dir, toy, checkpoint)

    def run(self, record, files, stall_timeout, token):
        """One attempt; `token` names it to `cancel`, which may come before or while it runs."""
        def cancelled():
            with self.lock:
                return token in self.cancelled
        try:
            return run_job(Job(**record), files, self.server.url, self.server.models_dir, stall_timeout, cancelled)
        finally:
            with self.lock:
                self.cancelled.discard(token)

    def cancel(self, token):
        """Ctrl-C in the driver: the attempt stops its prompt on the server (run_job's own cancel path)."""
        with self.lock:
            self.cancelled.add(token)

    def server_state(self, prompt_id):
        return server_state(self.server.url, prompt_id)

    def stop(self):
        stop_servers(self.started)


class RayBackend:
    def __init__(self, args):
        self.args = args
        self.actors: dict[str, object] = {}
        self.ray = _ray()
        self.own_ray = False   # ray.init() made here is shut down at the end; a caller's connection is left alone

    def _init(self):
        ray = self.ray
        if not ray.is_initialized():
            self.own_ray = True
            address = self.args.ray_address or os.environ.get("RAY_ADDRESS")
            ray.init(address=address, namespace=NAMESPACE, include_dashboard=False,
                     **({} if address else {"num_cpus": os.cpu_count()}))

    def _node_of(self, url: str):
        """A scheduling strategy that puts an attached server's actor on the node with the URL's address."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
        host = urllib.parse.urlparse(url).hostname
        if host in LOOPBACK:
            node = self.ray.get_runtime_context().get_node_id()
        else:
            nodes = [n["NodeID"] for n in self.ray.nodes() if n["Alive"] and n["NodeManagerAddress"] == host]
            if not nodes:
                raise SystemExit(f"expected a Ray node at {host} for the server {url}, got none in this cluster")
            node = nodes[0]
        return NodeAffinitySchedulingStrategy(node, soft=False)

    def start(self, urls, count, workdir) -> list:
        """Actors for the given URLs and `count` started servers; their Server entries (by name -> actor)."""
        ray = self.ray
        self._init()
        remote = ray.remote(max_restarts=ACTOR_RESTARTS, max_task_retries=0, max_concurrency=2)(ServerActor)
        devices = self.args.cuda_devices.split(",") if self.args.cuda_devices else None
        models = default_models_dir(self.args.models_dir, self.args.toy, workdir) if count else self.args.models_dir
        entries = []
        for url in urls:
            url = url.rstrip("/")
            actor = remote.options(num_cpus=0, name=url, scheduling_strategy=self._node_of(url)).remote(
                url, self.args.models_dir, workdir, self.args.toy, False)
            entries.append((url, actor, self.args.models_dir))
        for i in range(count):
            name = f"actor{i}" + (" (GPU)" if devices else " (CPU)")
            actor = remote.options(num_cpus=1, num_gpus=1 if devices else 0, name=name).remote(
                None, models, workdir, self.args.toy, bool(devices))
            entries.append((name, actor, models))
        out = []
        for name, actor, models_dir in entries:
            self.actors[name] = actor
            try:
                url = ray.get(actor.url.remote(), timeout=START_SECONDS)
            except ray.exceptions.GetTimeoutError:
                raise SystemExit(f"the actor {name} did not start its server within {START_SECONDS} s") from None
            except ray.exceptions.RayActorError as e:
                raise SystemExit(f"the actor {name} could not start its server: {e}") from None
            out.append(Server(url, models_dir, name=name))
        return out

    def check(self, server, toy, checkpoint):
        try:
            return self.ray.get(self.actors[server.name].check.remote(toy, checkpoint), timeout=CALL_SECONDS)
        except self.ray.exceptions.GetTimeoutError:
            return f"{server.name}: its actor did not answer the check within {CALL_SECONDS} s"
        except self.ray.exceptions.RayActorError as e:
            return f"{server.name}: its actor died during the check ({type(e).__name__})"

    def attempt(self, server, job, files, cancelled) -> Outcome:
        ray = self.ray
        actor = self.actors[server.name]
        token = uuid.uuid4().hex
        ref = actor.run.remote(job.as_record(), files, self.args.stall_timeout, token)
        asked = False
        while not ray.wait([ref], timeout=0.5)[0]:
            if cancelled() and not asked:
                actor.cancel.remote(token)
                asked = True
        try:
            return ray.get(ref)
        except ray.exceptions.RayActorError as e:
            return self._after_death(server, e)

    def _after_death(self, server, error) -> Outcome:
        """The actor died during an attempt: take its restarted server's URL, or mark it down when Ray will not
        restart it (dead for good) or it does not come back in time."""
        ray = self.ray
        what = f"the actor of {server.name} died during the job ({type(error).__name__})"
        deadline = time.monotonic() + START_SECONDS
        while True:
            left = deadline - time.monotonic()
            try:
                server.url = ray.get(self.actors[server.name].url.remote(), timeout=max(1.0, left))
                return Outcome(False, f"{what}; Ray restarted it")
            except ray.exceptions.ActorUnavailableError:  # restarting: ask again
                if left <= 0:
                    break
                time.sleep(1)
            except ray.exceptions.GetTimeoutError:
                break
            except ray.exceptions.RayActorError:
                return Outcome(False, f"{what}; Ray will not restart it (dead for good)", server_down=True)
        return Outcome(False, f"{what}; it did not come back within {START_SECONDS} s", server_down=True)

    def server_state(self, server, prompt_id):
        try:
            return self.ray.get(self.actors[server.name].server_state.remote(prompt_id), timeout=CALL_SECONDS)
        except self.ray.exceptions.GetTimeoutError:
            return BUSY
        except self.ray.exceptions.RayActorError:
            return DOWN

    def stop(self):
        """Each actor stops its server and ends (its name is free for the next command)."""
        for actor in self.actors.values():
            try:
                self.ray.get(actor.stop.remote(), timeout=CALL_SECONDS)
            except Exception:  # an actor already gone has nothing to stop
                pass
            try:
                self.ray.kill(actor, no_restart=True)
            except Exception:
                pass
        if self.own_ray:
            self.ray.shutdown()

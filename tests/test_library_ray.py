"""The motion library's Ray back-end: one actor per CPU server running the toy model through the demo's toy nodes,
the same manifest as the local back-end. On this machine (ray.init(num_cpus=2)), and on a simulated two-node
cluster (ray.cluster_utils.Cluster) whose driver cannot open a connection to any server: every check, upload,
follow, fetch and cancel must happen in the actors. The cases both back-ends share (a hung server, an execution
error, Ctrl-C and a rerun) are parametrized over them in tests/test_library.py.

Not tested here: nodes on separate machines (the two nodes share this machine's filesystem and loopback; what the
test proves is that the driver never connects to a server, which is what a real cluster needs)."""
import os
import socket
import threading
import time

import pytest
import ray
from safetensors.torch import load_file

from reenact_cli.library import __main__ as library
from reenact_cli.library.backend_ray import NAMESPACE
from reenact_cli.library.manifest import Manifest
from reenact_testkit.library_media import write_toy_images, write_toy_references

pytestmark = pytest.mark.full

STEPS = "12"


@pytest.fixture()
def ray_on_cpu():
    ray.init(num_cpus=2, namespace=NAMESPACE, include_dashboard=False)
    yield
    if ray.is_initialized():
        ray.shutdown()


@pytest.fixture(scope="module")
def references(tmp_path_factory):
    return write_toy_references(str(tmp_path_factory.mktemp("references")), 4, seed=910)


def events(lib):
    if not os.path.exists(os.path.join(lib, "manifest.sqlite")):
        return []
    return Manifest(str(lib)).events()


def learn(lib, refs, *servers_args):
    return library.main(["learn", "--library", str(lib), "--references", *refs, "--toy", "--steps", STEPS,
                         "--save-every", "3", "--backend", "ray", *servers_args])


def test_actors_start_their_servers_and_make_each_embedding_once(tmp_path, ray_on_cpu, references, monkeypatch):
    """Two actors, each starting a CPU server: every job done once, tokens equal to the local back-end's, bit for
    bit, when both servers compute with one thread: Ray sets OMP_NUM_THREADS to an actor's CPUs (1 here), which its
    server inherits, and a sum over other thread counts rounds differently."""
    assert learn(tmp_path / "ray", references, "--start", "2") == 0
    lines = events(tmp_path / "ray")
    done = [e for e in lines if e["event"] == "done"]
    assert sorted(e["job"] for e in done) == sorted({e["job"] for e in lines}) and len(done) == 4
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # what Ray gives each actor's server
    local = library.main(["learn", "--library", str(tmp_path / "local"), "--references", *references, "--toy",
                          "--steps", STEPS, "--save-every", "3", "--start", "1"])
    assert local == 0
    for e in done:
        a, b = load_file(e["output"]), load_file(os.path.join(tmp_path, "local", "embeddings", f"{e['job']}.safetensors"))
        assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a), e["job"]


def kill_actor0_once_a_job_starts(lib, wait, no_restart, before=lambda: None):
    """A started thread that, once the library's first job has started, calls `before`, waits `wait` s and kills
    actor0 (Ray restarts it unless `no_restart`); the list it returns holds True once it has."""
    killed = []

    def kill():
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not killed:
            if any(e["event"] == "started" for e in events(lib)):
                before()
                time.sleep(wait)
                ray.kill(ray.get_actor("actor0 (CPU)", namespace=NAMESPACE), no_restart=no_restart)
                killed.append(True)
            time.sleep(0.1)
    thread = threading.Thread(target=kill)
    thread.start()
    return thread, killed


@pytest.fixture()
def two_node_cluster():
    """A head and a second node of one CPU each, on this machine; the test's process is the driver."""
    from ray.cluster_utils import Cluster
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, namespace=NAMESPACE)
    yield cluster
    if ray.is_initialized():
        ray.shutdown()
    cluster.shutdown()


@pytest.fixture()
def driver_cannot_connect(monkeypatch):
    """Every TCP connection this process opens from Python fails and is recorded (Ray's own traffic goes through its
    C++ core, not Python sockets): a server reached from the driver fails the test even where the code would
    swallow the error."""
    tried = []
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def refused(self, address, *rest):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            tried.append(address)
            raise ConnectionRefusedError(111, f"the driver may not connect to {address}")
        return real_connect(self, address, *rest)

    def refused_ex(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            tried.append(address)
            return 111
        return real_connect_ex(self, address)
    monkeypatch.setattr(socket.socket, "connect", refused)
    monkeypatch.setattr(socket.socket, "connect_ex", refused_ex)
    return tried


def test_on_two_nodes_the_driver_never_reaches_a_server_and_a_killed_actor_is_retried(
        tmp_path, two_node_cluster, driver_cannot_connect, references):
    """Two actors, one per node, each starting its server; the first actor is killed mid-job: Ray restarts it and
    its job is retried. Then the learned motions are applied to an image. Every job done once, outputs in the
    library, and not one connection from the driver."""
    lib = tmp_path / "lib"
    nodes = set()

    def note_the_nodes():
        nodes.update(ray.get([ray.get_actor(name, namespace=NAMESPACE).node.remote()
                              for name in ("actor0 (CPU)", "actor1 (CPU)")]))
    thread, killed = kill_actor0_once_a_job_starts(lib, wait=2, no_restart=False, before=note_the_nodes)
    status = learn(lib, references[:3], "--start", "2", "--steps", "40")
    thread.join()
    assert killed and status == 0
    assert len(nodes) == 2, "the two actors were not on the two nodes"
    lines = events(lib)
    died = [e for e in lines if e["event"] == "attempt_failed"]
    assert died and all("actor of actor0 (CPU) died" in e["reason"] and "restarted" in e["reason"] for e in died)
    done = [e["job"] for e in lines if e["event"] == "done"]
    assert sorted(done) == sorted({e["job"] for e in lines}) and len(done) == len(set(done)) == 3
    assert all(os.path.getsize(lib / "embeddings" / f"{job}.safetensors") > 0 for job in done)
    images = write_toy_images(str(tmp_path / "images"), 1, seed=930)
    applied = library.main(["apply", "--library", str(lib), "--images", *images, "--toy", "--start", "2",
                            "--backend", "ray"])
    assert applied == 0
    videos = [e for e in events(lib) if e["event"] == "done" and e["job"] not in done]
    assert len(videos) == 3 and all(os.path.getsize(e["output"]) > 1000 for e in videos)
    assert not driver_cannot_connect, f"the driver connected to {driver_cannot_connect[:5]}"


def test_an_actor_dead_for_good_is_marked_down_at_once_and_its_job_done_elsewhere(tmp_path, ray_on_cpu, references):
    """An actor killed with no restart while it runs a job: the attempt fails naming it dead for good, the server
    gets no more jobs, and the other actor does them all."""
    lib = tmp_path / "lib"
    thread, killed = kill_actor0_once_a_job_starts(lib, wait=1, no_restart=True)
    started_at = time.monotonic()
    status = learn(lib, references[:3], "--start", "2", "--steps", "40")
    thread.join()
    assert killed and status == 0
    lines = events(lib)
    died = [e for e in lines if e["event"] == "attempt_failed"]
    assert len(died) == 1 and "dead for good" in died[0]["reason"], died
    after = [e for e in lines if e["event"] == "started" and e["seq"] > died[0]["seq"]]
    assert after and all(e["server"] != died[0]["server"] for e in after), "a dead actor was given a job"
    done = [e["job"] for e in lines if e["event"] == "done"]
    assert sorted(done) == sorted({e["job"] for e in lines}) and len(done) == 3
    assert time.monotonic() - started_at < 240, "waited on the dead actor instead of marking it down"

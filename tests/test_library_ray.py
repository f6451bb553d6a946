"""The motion library's Ray back-end on this machine: ray.init(num_cpus=2), one actor per CPU server running the toy
model through the demo's toy nodes, the same manifest as the local back-end. The cases both back-ends share (a hung
server, an execution error, Ctrl-C and a rerun) are parametrized over them in tests/test_library.py."""
import json
import os
import threading
import time

import pytest
import ray
from safetensors.torch import load_file

from reenact_cli.library import __main__ as library
from reenact_cli.library.backend_ray import NAMESPACE
from reenact_testkit.library_media import write_toy_references

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
    with open(os.path.join(lib, "manifest.jsonl")) as f:
        return [json.loads(line) for line in f]


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


def test_a_killed_actor_is_restarted_by_ray_and_its_job_retried(tmp_path, ray_on_cpu, references):
    lib = tmp_path / "lib"
    killed = []

    def kill_first_actor():
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not killed:
            if os.path.exists(lib / "manifest.jsonl") and any(e["event"] == "started" for e in events(lib)):
                time.sleep(2)
                actor = ray.get_actor("actor0 (CPU)", namespace=NAMESPACE)
                ray.kill(actor, no_restart=False)
                killed.append(True)
            time.sleep(0.1)
    thread = threading.Thread(target=kill_first_actor)
    thread.start()
    status = learn(lib, references[:3], "--start", "2", "--steps", "40")
    thread.join()
    assert killed and status == 0
    lines = events(lib)
    died = [e for e in lines if e["event"] == "attempt_failed"]
    assert died and all("actor of actor0 (CPU) died" in e["reason"] for e in died)
    done = [e["job"] for e in lines if e["event"] == "done"]
    assert sorted(done) == sorted({e["job"] for e in lines}) and len(done) == len(set(done)) == 3


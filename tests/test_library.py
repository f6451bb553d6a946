"""The motion library (python -m reenact_cli.library) on real CPU ComfyUI servers running the toy model through the
demo's toy nodes: exactly once, the same tokens as one server, a killed server, a hung one, one that stalls and
recovers, an execution error and --retry-failed, Ctrl-C and a rerun, two runs at once, bad input named before any
server time. The hung server, the execution error and Ctrl-C run on both back-ends (the Ray one with actors attached
to these servers, ray.init on this machine by the command itself); tests/test_library_ray.py has the Ray cases of
its own (actors that start servers, a two-node cluster the driver cannot reach the servers of).

Each test has its own servers, so its own models folder, and its own library: no test can resume another's run
checkpoints, whatever its seeds. The manifest-only parts are tests/test_library_manifest.py's (quick tier)."""
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from safetensors.torch import load_file

from reenact_cli.api_client import ComfyClient
from reenact_cli.library import __main__ as library
from reenact_cli.library.manifest import Manifest
from reenact_cli.library.servers import start_servers, stop_servers
from reenact_cli.locate import PACK_ROOT
from reenact_testkit.library_media import write_toy_images, write_toy_references, write_truncated_video
from reenact_testkit.signals import default_sigint

pytestmark = pytest.mark.full

STEPS = "12"
CANCEL_STEPS = "40"   # a job long enough (~8 s) to be cancelled while it runs, not just after
BACKENDS = ("local", "ray")


@pytest.fixture()
def servers(tmp_path):
    """Two toy servers of this test's own, sharing one models folder, as --start makes them."""
    started = start_servers(2, str(tmp_path / "servers"), None, toy=True)
    yield started
    stop_servers(started)


@pytest.fixture()
def server(tmp_path):
    """One toy server of this test's own."""
    started = start_servers(1, str(tmp_path / "server"), None, toy=True)
    yield started[0]
    stop_servers(started)


@pytest.fixture(scope="module")
def references(tmp_path_factory):
    return write_toy_references(str(tmp_path_factory.mktemp("references")), 6, seed=900)


def learn_argv(lib, servers, refs, *extra, backend="local"):
    return ["learn", "--library", str(lib), "--references", *refs, "--toy", "--steps", STEPS, "--save-every", "3",
            "--servers", *[s.url for s in servers], "--models-dir", servers[0].models_dir, "--backend", backend,
            *extra]


def learn(lib, servers, refs, *extra, backend="local"):
    return library.main(learn_argv(lib, servers, refs, *extra, backend=backend))


def events(lib):
    """The manifest's events, oldest first ([] before the command has made it)."""
    if not os.path.exists(os.path.join(lib, "manifest.sqlite")):
        return []
    return Manifest(str(lib)).events()


def tokens(path):
    return load_file(path)


def test_each_embedding_is_made_once_and_equals_one_servers(tmp_path, servers, references):
    references = references[:4]
    assert learn(tmp_path / "two", servers, references) == 0
    lines = events(tmp_path / "two")
    done = [e for e in lines if e["event"] == "done"]
    assert sorted(e["job"] for e in done) == sorted({e["job"] for e in lines}) and len(done) == 4
    assert len({e["server"] for e in done}) == 2, "both servers took jobs"
    assert all(e["attempt"] == 1 for e in lines if e["event"] == "started")
    # a rerun does nothing: every job is done
    assert learn(tmp_path / "two", servers, references) == 0
    assert len(events(tmp_path / "two")) == len(lines)
    # one server of its own (no checkpoint of these jobs in its models folder), the same seeds: the same tokens,
    # bit for bit (CPU, the same threads and order of operations)
    alone = start_servers(1, str(tmp_path / "alone"), None, toy=True)
    try:
        assert learn(tmp_path / "one", alone, references) == 0
    finally:
        stop_servers(alone)
    for e in done:
        one = tokens(os.path.join(tmp_path, "one", "embeddings", f"{e['job']}.safetensors"))
        two = tokens(e["output"])
        assert one.keys() == two.keys() and all((one[k] == two[k]).all() for k in one), e["job"]


def video_frames(path):
    import av
    with av.open(path) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def test_apply_makes_every_pair_once_and_the_contact_sheet(tmp_path, servers, references, capsys):
    """Two learned motions on two images: four videos, each once, starting from its own image; the sheet shows the
    two references and the four results; a rerun does nothing; zip with a count that differs is named."""
    from PIL import Image
    from reenact_cli.library.report import THUMB
    lib = tmp_path / "lib"
    assert learn(lib, servers, references[:2]) == 0
    images = write_toy_images(str(tmp_path / "images"), 2, seed=920)
    argv = ["apply", "--library", str(lib), "--images", str(tmp_path / "images"), "--toy", "--steps", STEPS,
            "--servers", *[s.url for s in servers], "--models-dir", servers[0].models_dir]
    assert library.main(argv) == 0
    states = Manifest(str(lib)).read()
    applied = [s for s in states.values() if s.kind == "apply"]
    assert len(applied) == 4 and all(s.status == "done" for s in applied)
    assert {(s.inputs["motion"], s.inputs["image"]) for s in applied} == {
        (m, i) for m in (s for s, st in states.items() if st.kind == "learn") for i in images}
    videos = {s.output: video_frames(s.output) for s in applied}
    assert len(videos) == 4 and all(os.path.dirname(p) == str(lib / "videos") for p in videos)
    for s in applied:
        frames = videos[s.output]
        target = np.asarray(Image.open(s.inputs["image"]).convert("RGB"), dtype=np.float32)
        assert len(frames) == len(video_frames(references[0])) and frames[0].shape == target.shape
        first_error = np.abs(frames[0].astype(np.float32) - target).mean()
        other = next(i for i in images if i != s.inputs["image"])
        other_error = np.abs(frames[0].astype(np.float32) -
                             np.asarray(Image.open(other).convert("RGB"), dtype=np.float32)).mean()
        assert first_error < other_error, f"{s.output} does not start from its image: {first_error}, {other_error}"
    by_image = {}
    for s in applied:
        by_image.setdefault(s.inputs["image"], []).append(np.stack(videos[s.output]))
    assert all(not np.array_equal(*pair) for pair in by_image.values()), "two motions gave the same video"
    sheet = Image.open(lib / "contact_sheet.png")
    assert sheet.height == 6 * THUMB, "two reference rows and four result rows"
    before = len(events(lib))
    assert library.main(argv) == 0
    assert not [e for e in events(lib)[before:] if e["event"] == "started"], "a rerun ran a finished job"
    zipped = library.main([*argv, "--pairing", "zip", "--images", images[0]])
    assert zipped == 2 and "expected as many images as motions to zip, got 1 images for 2" in capsys.readouterr().err


def first_started(lib, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        started = [e for e in events(lib) if e["event"] == "started"]
        if started:
            return started[0]
        time.sleep(0.1)
    raise AssertionError("no job started")


def test_a_killed_server_job_finishes_on_another_and_resumes(tmp_path, references):
    """SIGKILL the server running the first job once it has written a checkpoint; that job is retried on the other
    server, from the checkpoint (shared models folder); nothing is lost or made twice."""
    servers = start_servers(2, str(tmp_path / "servers"), None, toy=True)
    lib = tmp_path / "lib"
    try:
        def kill_first():
            job = first_started(lib)
            victim = next(s for s in servers if s.url == job["server"])
            checkpoints = os.path.join(victim.models_dir, "motion_embeddings", "checkpoints")
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not any(
                    n.startswith(job["job"]) for n in (os.listdir(checkpoints) if os.path.isdir(checkpoints) else [])):
                time.sleep(0.1)
            victim.process.process.send_signal(signal.SIGKILL)
        killer = threading.Thread(target=kill_first)
        killer.start()
        status = learn(lib, servers, references[:3], "--steps", "40")
        killer.join()
    finally:
        stop_servers(servers)
    assert status == 0
    lines = events(lib)
    failed = [e for e in lines if e["event"] == "attempt_failed"]
    assert len(failed) == 1 and "went away" in failed[0]["reason"]
    retried = [e for e in lines if e["event"] == "done" and e["job"] == failed[0]["job"]]
    assert len(retried) == 1 and retried[0]["attempt"] == 2 and retried[0]["server"] != failed[0]["server"]
    assert "resumed_from" in retried[0]["seconds"], "the retry did not resume from the run checkpoint"
    assert sorted(e["job"] for e in lines if e["event"] == "done") == sorted({e["job"] for e in lines})
    assert len(os.listdir(lib / "embeddings")) == 3


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_hung_server_is_retried_then_failed_with_the_reason(tmp_path, references, backend):
    """Each server is stopped (SIGSTOP) as soon as it is given the job: the stall timeout hands it to the other,
    which hangs too; with two attempts spent the job is failed, saying why."""
    servers = start_servers(2, str(tmp_path / "servers"), None, toy=True)
    lib = tmp_path / "lib"
    stopped = []
    try:
        def stop_each():
            deadline = time.monotonic() + 200
            while time.monotonic() < deadline and len(stopped) < 2:
                for e in events(lib):
                    if e["event"] == "started" and e["server"] not in stopped:
                        next(s for s in servers if s.url == e["server"]).process.process.send_signal(signal.SIGSTOP)
                        stopped.append(e["server"])
                time.sleep(0.05)
        thread = threading.Thread(target=stop_each)
        thread.start()
        status = learn(lib, servers, references[:1], "--attempts", "2", "--stall-timeout", "4", backend=backend)
        thread.join()
    finally:
        for s in servers:
            s.process.process.send_signal(signal.SIGCONT)
        stop_servers(servers)
    assert status == 1
    lines = events(lib)
    assert [e["event"] for e in lines if e["event"] != "added"] == ["started", "attempt_failed", "started",
                                                                    "attempt_failed", "failed"]
    assert all("stalled" in e["reason"] for e in lines if e["event"] in ("attempt_failed", "failed"))
    assert "after 2 attempts" in lines[-1]["reason"]


def test_a_stalled_server_rests_and_comes_back_without_running_the_job_twice(tmp_path, servers, references, capsys):
    """The server given the first job stops (SIGSTOP) and, once the job has gone to the other, goes on (SIGCONT):
    the job is done once, on the other; the stalled server's prompt is stopped there, not finished; the server is
    back in the rotation; nothing is marked down."""
    lib = tmp_path / "lib"
    stopped = {}

    def stop_then_continue():
        job = first_started(lib)
        victim = next(s for s in servers if s.url == job["server"])
        victim.process.process.send_signal(signal.SIGSTOP)
        stopped.update(job=job["job"], server=victim)
        deadline = time.monotonic() + 200
        while time.monotonic() < deadline and not [e for e in events(lib) if e["event"] == "attempt_failed"]:
            time.sleep(0.05)
        victim.process.process.send_signal(signal.SIGCONT)
    thread = threading.Thread(target=stop_then_continue)
    thread.start()
    try:
        status = learn(lib, servers, references[:2], "--steps", CANCEL_STEPS, "--stall-timeout", "15")
    finally:
        thread.join()
        for s in servers:
            s.process.process.send_signal(signal.SIGCONT)
    lines = events(lib)
    assert status == 0, [(e["event"], e["server"], e["reason"], e["t"]) for e in lines]
    victim = stopped["server"]
    failed = [e for e in lines if e["event"] == "attempt_failed"]
    assert len(failed) == 1 and "stalled" in failed[0]["reason"] and failed[0]["server"] == victim.url
    done = [e for e in lines if e["event"] == "done"]
    assert sorted(e["job"] for e in done) == sorted({e["job"] for e in lines}) and len(done) == 2
    assert [e["server"] for e in done if e["job"] == stopped["job"]] != [victim.url]
    client = ComfyClient(victim.url)
    queue = client.get_json("/queue")
    assert not queue["queue_running"] and not queue["queue_pending"], "the stalled prompt is still on its server"
    finished = [p for p, entry in client.get_json("/history").items()
                if entry.get("status", {}).get("status_str") == "success"
                and any(n["class_type"] == "OptimizeMotionEmbedding" and n["inputs"].get("run_name") == stopped["job"]
                        for n in entry["prompt"][2].values())]
    assert not finished, "the stalled server finished the job that was given to the other: it ran twice"
    err = capsys.readouterr().err
    assert "back after a stall" in err, err[-2000:]


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_execution_error_is_retried_then_failed_with_the_reason(tmp_path, servers, references, backend):
    """A video whose header promises its frames but whose data is cut: only the server finds out. A plain rerun
    leaves the failed job alone; --retry-failed runs it again."""
    broken = write_truncated_video(str(tmp_path / "cut.mp4"), seed=901)
    status = learn(tmp_path / "lib", servers, [broken], "--attempts", "2", backend=backend)
    assert status == 1
    lines = events(tmp_path / "lib")
    failed = [e for e in lines if e["event"] == "attempt_failed"]
    assert len(failed) == 2 and len({e["server"] for e in failed}) == 2, "retried on the other server"
    assert all("execution error" in e["reason"] and "LoadMotionReference" in e["reason"] for e in failed)
    assert lines[-1]["event"] == "failed" and "after 2 attempts" in lines[-1]["reason"]
    if backend == "local":
        assert learn(tmp_path / "lib", servers, [broken], "--attempts", "2") == 1
        assert len(events(tmp_path / "lib")) == len(lines), "a plain rerun ran a failed job"
        assert learn(tmp_path / "lib", servers, [broken], "--attempts", "1", "--retry-failed") == 1
        again = events(tmp_path / "lib")[len(lines):]
        assert [e["event"] for e in again] == ["requeued", "started", "attempt_failed", "failed"], again


def test_a_cancelled_job_stops_its_own_prompt_and_no_one_elses(tmp_path, server, references):
    """On a server shared with a user: cancelling the library's job while it waits behind the user's running prompt
    takes it out of the queue and leaves the user's prompt running to its end (a global interrupt would stop it)."""
    from reenact_cli.demo import install_init
    from reenact_cli.library.execute import CANCELLED, run_job
    from reenact_cli.library.graphs import learn_prompt
    from reenact_cli.library.jobs import job_files, learn_jobs
    install_init(os.path.dirname(server.models_dir))
    client = ComfyClient(server.url)
    settings = library.settings_of(library.parse(["learn", "--library", str(tmp_path), "--toy", "--steps",
                                                  CANCEL_STEPS, "--seed", "200"]))
    theirs, ours = learn_jobs(references[4:6], settings)
    uploaded = client.upload(theirs.inputs["reference"], subfolder="someone", name="theirs.mp4")
    their_id = client.queue(learn_prompt(theirs, uploaded, client.object_info()))
    deadline = time.monotonic() + 60
    while not client.get_json("/queue")["queue_running"] and time.monotonic() < deadline:
        time.sleep(0.05)
    cancel, result = threading.Event(), {}
    attempt = threading.Thread(target=lambda: result.update(outcome=run_job(
        ours, job_files(ours, str(tmp_path / "lib")), server.url, server.models_dir, 120, cancel.is_set)))
    attempt.start()
    while not client.get_json("/queue")["queue_pending"] and time.monotonic() < deadline:
        time.sleep(0.05)
    queue = client.get_json("/queue")
    assert [item[1] for item in queue["queue_running"]] == [their_id] and len(queue["queue_pending"]) == 1, \
        "expected the user's prompt running and the library's waiting"
    cancel.set()
    attempt.join(60)
    assert result["outcome"].reason == CANCELLED
    queue = client.get_json("/queue")
    assert [item[1] for item in queue["queue_running"]] == [their_id], "the user's prompt was stopped"
    assert not queue["queue_pending"], "the cancelled prompt still waits"
    status = client.history(their_id, timeout=180)["status"]
    assert status["status_str"] == "success" and status["completed"], status


def test_bad_input_is_named_before_any_server_time(tmp_path, server, references):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video")
    assert learn(tmp_path / "lib", [server], [str(junk), references[0]]) == 1
    lines = events(tmp_path / "lib")
    junk_events = [e for e in lines if e["job"] == lines[0]["job"]]
    assert [e["event"] for e in junk_events] == ["added", "failed"], "an unreadable video reached a server"
    assert "PyAV cannot open" in junk_events[-1]["reason"] and "junk.mp4" in junk_events[-1]["reason"]


def test_an_unusable_server_is_named_at_the_start(tmp_path, server, references, capsys):
    from reenact_cli.comfy_server import free_port
    dead = f"http://127.0.0.1:{free_port()}"
    assert learn(tmp_path / "lib", [server, type(server)(dead, server.models_dir)], references[:1]) == 2
    assert f"{dead} does not answer" in capsys.readouterr().err
    assert not [e for e in events(tmp_path / "lib") if e["event"] == "started"]


def test_a_server_without_the_svd_checkpoint_is_named_at_the_start(tmp_path, server, references, capsys):
    """The toy servers have no SVD checkpoint: an SVD run is refused before any job, naming the file, where it goes
    and what the server has."""
    argv = ["learn", "--library", str(tmp_path / "lib"), "--references", references[0], "--servers",
            server.url, "--models-dir", server.models_dir, "--checkpoint", "svd_xt.safetensors"]
    assert library.main(argv) == 2
    err = capsys.readouterr().err
    assert "missing checkpoint: svd_xt.safetensors" in err, err
    assert os.path.join(server.models_dir, "checkpoints", "svd_xt.safetensors") in err, err
    assert not [e for e in events(tmp_path / "lib") if e["event"] == "started"]


def test_started_svd_servers_use_the_given_models_folder_else_comfyuis_own(tmp_path, monkeypatch):
    """Servers started for SVD need the user's checkpoints: --models-dir, else the ComfyUI checkout's models/; only
    the toy gets a scratch folder (its weights come with the repository)."""
    from reenact_cli.library.servers import default_models_dir
    from reenact_cli.locate import find_comfyui
    assert default_models_dir(str(tmp_path / "m"), False, "/scratch") == str(tmp_path / "m")
    assert default_models_dir(None, False, "/scratch") == os.path.join(find_comfyui(), "models")
    assert default_models_dir(None, True, "/scratch") == os.path.join("/scratch", "models")


@pytest.mark.parametrize("backend", BACKENDS)
def test_ctrl_c_then_a_rerun_finishes_the_rest(tmp_path, server, references, backend):
    """SIGINT to the command while its second job runs on the server: exit 130, that job given back and its prompt
    gone from the server; a rerun skips what is done and completes the rest, each job done once."""
    lib = tmp_path / "lib"
    argv = [sys.executable, "-m", "reenact_cli.library",
            *learn_argv(lib, [server], references[:4], "--steps", CANCEL_STEPS, backend=backend)]
    client = ComfyClient(server.url)
    command = subprocess.Popen(argv, cwd=PACK_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=default_sigint)
    def second_running():
        lines = events(lib)
        done = [i for i, e in enumerate(lines) if e["event"] == "done"]
        return done and any(e["event"] == "started" for e in lines[done[0]:]) and \
            client.get_json("/queue")["queue_running"]
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not second_running():
        time.sleep(0.05)
    command.send_signal(signal.SIGINT)
    out, err = command.communicate(timeout=120)
    queue = client.get_json("/queue")
    assert command.returncode == 130, err[-2000:]
    assert not queue["queue_running"] and not queue["queue_pending"], "the cancelled prompt is still on the server"
    first = events(lib)
    done_before = {e["job"] for e in first if e["event"] == "done"}
    assert done_before and len(done_before) < 4
    assert any(e["event"] == "released" for e in first), \
        f"the running job was not given back: {[(e['job'], e['event']) for e in first]}\n{err[-2000:]}"
    rerun = subprocess.run(argv, cwd=PACK_ROOT, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    after = events(lib)[len(first):]
    assert not {e["job"] for e in after if e["event"] == "started"} & done_before, "a finished job ran again"
    done = [e["job"] for e in events(lib) if e["event"] == "done"]
    assert len(done) == len(set(done)) == 4


def test_two_runs_at_once_on_one_library_each_do_a_job_once_and_both_end_0(tmp_path, servers, references):
    """Two commands on one library, each with a server of its own: every job done once, and the run that finds jobs
    held by the other says so and waits for them, so both end 0 (it used to end 1, as if a job had failed)."""
    lib = tmp_path / "lib"
    commands = [subprocess.Popen([sys.executable, "-m", "reenact_cli.library",
                                  *learn_argv(lib, [server], references[:3])], cwd=PACK_ROOT, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE) for server in servers]
    results = [command.communicate(timeout=600) for command in commands]
    assert [c.returncode for c in commands] == [0, 0], [err[-2000:] for _, err in results]
    lines = events(lib)
    done = [e["job"] for e in lines if e["event"] == "done"]
    assert len(done) == len(set(done)) == 3
    assert len({e["run"] for e in lines if e["event"] == "started"}) == 2, "both runs took jobs"
    assert all('{"done": 3, "jobs": 3}' in out for out, _ in results), "a run ended before the other's jobs"

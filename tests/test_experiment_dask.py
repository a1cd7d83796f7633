"""The Dask executor, for real: a scheduler and two workers on 127.0.0.1, started here."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed", reason="dask.distributed is not installed")

from storeops.engine.experiment import load_experiment
from storeops.engine.experiment_run import run_experiment

SMALL = Path(__file__).parent / "data" / "experiments" / "small.yaml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    folder = tmp_path_factory.mktemp("dask")
    env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False",
           # the default, whatever the developer's dask config says (the notes test needs it)
           "DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "True",
           "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler",
                               "--host", "127.0.0.1", "--port", str(port),
                               "--dashboard-address", ":0", "--no-show"],
                              cwd=folder, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)]
    try:
        from distributed import Client

        deadline = time.monotonic() + 60
        while True:
            try:
                Client(address, timeout="2s").close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("the Dask scheduler did not start")
                time.sleep(0.5)
        for _ in range(2):
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "distributed.cli.dask_worker", address, "--host",
                 "127.0.0.1", "--nthreads", "1", "--no-nanny", "--no-dashboard",
                 "--memory-limit", "0"], cwd=folder, env=env, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL))
        with Client(address, timeout="10s") as client:
            client.wait_for_workers(2, timeout=60)
        yield address, procs
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_dask_gives_the_same_results_as_one_process(tmp_path, cluster):
    address, _ = cluster
    experiment = load_experiment(SMALL)
    run_experiment(experiment, out_dir=tmp_path / "local", executor="local", report=False)
    run_experiment(experiment, out_dir=tmp_path / "dask", executor="dask", scheduler=address,
                   report=False)
    for name in ("results.csv", "points.csv", "recommendation.json"):
        assert (tmp_path / "dask" / name).read_bytes() == \
            (tmp_path / "local" / name).read_bytes(), name


def test_workers_running_the_profiler_are_named_and_left_as_they_are(cluster, caplog):
    from storeops.engine.executors import DaskRunner, _worker_profiler

    address, _ = cluster
    with caplog.at_level(logging.WARNING, logger="storeops.engine.executors"):
        runner = DaskRunner(address)
    try:
        assert len(runner.notes) == 1, runner.notes
        assert runner.notes[0].startswith("2 of 2 Dask worker(s) run the statistical profiler "
                                          "(a stack sample every 10ms)")
        assert runner.notes[0] in caplog.text
        assert all(on for on, _ in runner.client.run(_worker_profiler).values())  # unchanged
    finally:
        runner.close()


def test_cluster_notes_name_what_slows_replications():
    from storeops.engine.executors import cluster_notes

    class Client:  # what cluster_notes asks of a distributed.Client
        def __init__(self, profilers, threads):
            self.profilers, self.threads = profilers, threads

        def run(self, function):
            return self.profilers

        def nthreads(self):
            return self.threads

    quiet = Client({"a": (False, "10ms"), "b": (False, "10ms")}, {"a": 1, "b": 1})
    assert cluster_notes(quiet) == []
    notes = cluster_notes(Client({"a": (True, "20ms"), "b": (False, "10ms")}, {"a": 1, "b": 4}))
    assert len(notes) == 2
    assert notes[0].startswith("1 of 2 Dask worker(s) run the statistical profiler (a stack "
                               "sample every 20ms)")
    assert "DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False" in notes[0]
    assert notes[1].startswith("1 Dask worker(s) have more than one thread")


@pytest.mark.slow
def test_a_worker_that_dies_loses_no_result(tmp_path, cluster):
    """SIGKILL one of the two workers mid-run: the scheduler reruns its tasks on the other."""
    address, procs = cluster
    experiment = load_experiment(SMALL)
    run_experiment(experiment, out_dir=tmp_path / "local", executor="local", report=False)
    victim = procs[1]

    def progress(phase, done=0, total=0):
        if done == 3 and victim.poll() is None:
            victim.kill()

    result = run_experiment(experiment, out_dir=tmp_path / "dask", executor="dask",
                            scheduler=address, report=False, progress=progress)
    assert victim.poll() is not None  # it did die mid-run
    assert result.recommendation["failed_jobs"] == []
    assert (tmp_path / "dask" / "results.csv").read_bytes() == \
        (tmp_path / "local" / "results.csv").read_bytes()


@pytest.mark.slow  # the client waits out its connect timeout
def test_an_unreachable_scheduler_is_one_clear_error(tmp_path):
    from storeops.engine.errors import StoreopsError

    experiment = load_experiment(SMALL)
    with pytest.raises(StoreopsError, match=r"--scheduler tcp://127.0.0.1:\d+: cannot reach a "
                                            "Dask scheduler there"):
        run_experiment(experiment, out_dir=tmp_path, executor="dask",
                       scheduler=f"tcp://127.0.0.1:{free_port()}", report=False)

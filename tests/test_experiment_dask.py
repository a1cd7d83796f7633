"""The Dask executor, for real: a scheduler and two workers on 127.0.0.1, started here."""

from __future__ import annotations

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

"""Where experiment jobs run: in this process, in local processes, or on a Dask cluster.

A job is one (design point, replication): a picklable call of ``run_replication`` on the
point's frozen scenario with the experiment's seed, so its result depends on nothing else and
is the same wherever and in whichever order it runs. Every runner has one method,
``run(jobs, done)``, which calls ``done(job, metrics, error)`` in the driving process as each
job finishes. A job that raises is retried once; a job that still fails is handed back with its
error (the caller reports it, nothing is silently lost).

- ``InProcessRunner``: one after the other, here (tests, debugging).
- ``ProcessRunner``: a ``ProcessPoolExecutor`` (spawn) with one process per core. A worker
  that dies breaks the whole pool in ``concurrent.futures``; the unfinished jobs are resubmitted
  to a fresh pool, and jobs caught in a second break run one at a time, so only the job that
  kills its worker is lost (and reported).
- ``DaskRunner``: ``dask.distributed.Client(address)``; the scheduler reruns the tasks of a
  worker that dies on other workers (``distributed.scheduler.allowed-failures``), and a task
  that raises is retried once (``retries=1``). It leaves the cluster's settings alone, but says
  (a logged warning) when workers run the statistical profiler or several threads, which slow a
  pure-Python replication (docs/experiments.md, "Dask workers").

The journal (``Journal``) records each finished job as one JSON line, appended with a single
``write`` on a file opened ``O_APPEND``, so an interrupted experiment resumes from its finished
jobs; a torn last line (a killed writer) is ignored on reading.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InputError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    key: str                 # design point key
    replication: int
    policy: str
    seed: int
    scenario: Any            # the point's frozen Scenario (picklable)


Done = Callable[[Job, "dict[str, float] | None", "str | None"], None]


def run_job(scenario, policy: str, seed: int, replication: int) -> tuple[tuple[str, float], ...]:
    """One replication's metrics; module-level so that every executor can pickle it."""
    from .simulation import run_replication

    return run_replication(scenario, policy, seed, replication).metrics


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text if len(text) < 500 else text[:497] + "..."


class InProcessRunner:
    name = "local"

    def run(self, jobs: Sequence[Job], done: Done) -> None:
        for job in jobs:
            error = None
            for _attempt in range(2):
                try:
                    metrics = run_job(job.scenario, job.policy, job.seed, job.replication)
                except Exception as exc:  # a failed job is reported, never raised past others
                    error = _describe(exc)
                    continue
                done(job, dict(metrics), None)
                break
            else:
                done(job, None, error)

    def close(self) -> None:
        pass


class ProcessRunner:
    name = "process"

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or os.cpu_count() or 1
        self.pool = None

    def _pool(self, workers: int | None = None):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        return ProcessPoolExecutor(max_workers=workers or self.workers,
                                   mp_context=multiprocessing.get_context("spawn"))

    def run(self, jobs: Sequence[Job], done: Done) -> None:
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        attempts = {id(job): 0 for job in jobs}
        breaks = {id(job): 0 for job in jobs}
        solo: list[Job] = []
        pending = list(jobs)
        while pending:
            if self.pool is None:
                self.pool = self._pool()
            futures = {self.pool.submit(run_job, j.scenario, j.policy, j.seed, j.replication): j
                       for j in pending}
            pending = []
            broken = False
            while futures:
                finished, _ = wait(futures, return_when=FIRST_COMPLETED)
                for future in finished:
                    job = futures.pop(future)
                    try:
                        metrics = future.result()
                    except BrokenProcessPool:
                        broken = True
                        breaks[id(job)] += 1
                        (solo if breaks[id(job)] >= 2 else pending).append(job)
                        continue
                    except Exception as exc:
                        attempts[id(job)] += 1
                        if attempts[id(job)] < 2:
                            pending.append(job)
                        else:
                            done(job, None, _describe(exc))
                        continue
                    done(job, dict(metrics), None)
            if broken:
                self.pool.shutdown(wait=True, cancel_futures=True)
                self.pool = None
        for job in solo:  # caught in two pool breaks: alone, so a break names its job
            self._run_alone(job, done)

    def _run_alone(self, job: Job, done: Done) -> None:
        from concurrent.futures.process import BrokenProcessPool

        pool = self._pool(1)
        try:
            metrics = pool.submit(run_job, job.scenario, job.policy, job.seed,
                                  job.replication).result()
        except BrokenProcessPool:
            done(job, None, "the worker process died running this job (twice)")
        except Exception as exc:
            done(job, None, _describe(exc))
        else:
            done(job, dict(metrics), None)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None


class DaskRunner:
    name = "dask"

    def __init__(self, address: str) -> None:
        try:
            from distributed import Client
        except ImportError:
            raise InputError("--executor dask needs dask.distributed (pip install "
                             "'storeops[dask]')") from None
        try:
            self.client = Client(address, timeout="15s")
        except (OSError, TimeoutError) as exc:
            raise InputError(f"--scheduler {address}: cannot reach a Dask scheduler there "
                             f"({_describe(exc)})") from None
        self.scattered: dict[str, Any] = {}
        self.notes = cluster_notes(self.client)
        for note in self.notes:
            logger.warning("%s", note)

    def run(self, jobs: Sequence[Job], done: Done) -> None:
        from distributed import as_completed

        futures = {}
        attempts: dict[int, int] = {}
        for job in jobs:
            futures[self._submit(job)] = job
            attempts[id(job)] = 1
        pending = as_completed(list(futures))
        for future in pending:
            job = futures.pop(future)
            try:
                metrics = future.result()
            except Exception as exc:  # KilledWorker after the allowed failures, or the job's
                if future.status == "cancelled" and attempts[id(job)] < 2:
                    # its scattered scenario died with a worker: scatter again, run again
                    attempts[id(job)] += 1
                    self.scattered.pop(job.key, None)
                    again = self._submit(job)
                    futures[again] = job
                    pending.add(again)
                    continue
                done(job, None, _describe(exc))
                continue
            done(job, dict(metrics), None)

    def _submit(self, job: Job):
        # each point's scenario travels to the cluster once, not once per replication; a copy
        # on every worker, so that a worker that dies takes no scenario with it
        if job.key not in self.scattered:
            self.scattered[job.key] = self.client.scatter(job.scenario, hash=False,
                                                          broadcast=True)
        return self.client.submit(run_job, self.scattered[job.key], job.policy, job.seed,
                                  job.replication, pure=False, retries=1)

    def close(self) -> None:
        self.client.close()


def _worker_profiler() -> tuple[bool, str]:
    """Runs on a worker (reads, changes nothing): is its statistical profiler on, how often."""
    import dask

    return (bool(dask.config.get("distributed.worker.profile.enabled", True)),
            str(dask.config.get("distributed.worker.profile.interval", "10ms")))


def cluster_notes(client) -> list[str]:
    """What in the workers' settings slows a replication, as advice; the settings stay as the
    user made them (their cluster may serve other work that wants them).

    Measured on 2 cores (docs/experiments.md): with the profiler's stack sample every 10 ms, a
    replication (pure Python, holding the GIL) took about 20 % longer than in the process
    executor, 0-10 % with it off; a worker with several threads runs several replications under
    one GIL.
    """
    notes = []
    try:
        profilers = client.run(_worker_profiler)
        threads = client.nthreads()
    except Exception as exc:  # advice only: never stop an experiment for it
        logger.debug("could not read the Dask workers' settings: %s", _describe(exc))
        return notes
    profiling = sorted(addr for addr, (on, _) in profilers.items() if on)
    if profiling:
        interval = profilers[profiling[0]][1]
        notes.append(
            f"{len(profiling)} of {len(profilers)} Dask worker(s) run the statistical profiler "
            f"(a stack sample every {interval}), which slows replications (10-20 % in our "
            "measurements); "
            "start workers with DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False to avoid it "
            "(docs/experiments.md)")
    crowded = sorted(addr for addr, n in threads.items() if n > 1)
    if crowded:
        notes.append(
            f"{len(crowded)} Dask worker(s) have more than one thread; replications are pure "
            "Python and share one GIL per worker process: start workers with --nthreads 1 "
            "(and one worker process per core)")
    return notes


def make_runner(executor: str, scheduler: str | None = None,
                workers: int | None = None):
    if executor == "local":
        return InProcessRunner()
    if executor == "process":
        return ProcessRunner(workers)
    if executor == "dask":
        if not scheduler:
            raise InputError("--executor dask needs --scheduler ADDRESS (e.g. "
                             "tcp://10.0.0.5:8786)")
        return DaskRunner(scheduler)
    raise InputError(f"unknown executor '{executor}' (expected local, process or dask)")


# -- the journal --------------------------------------------------------------------------------


class Journal:
    """Finished jobs, one JSON line each: ``{"key", "replication", "metrics" | "error"}``.

    The first line names the experiment's fingerprint; a journal of another fingerprint (the
    scenario, its packs, the fixed values or the seed changed) is set aside, not reused.
    """

    def __init__(self, path: str | os.PathLike, fingerprint: str) -> None:
        self.path = Path(path)
        self.fingerprint = fingerprint
        self.results: dict[tuple[str, int], dict[str, float]] = {}
        self.errors: dict[tuple[str, int], str] = {}
        self._read()
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        size = os.fstat(self.fd).st_size
        if size == 0:
            self._write({"journal": "storeops experiment", "fingerprint": fingerprint})
        elif not self.path.read_bytes().endswith(b"\n"):
            os.write(self.fd, b"\n")  # end a torn line, so that it spoils no other record

    def _read(self) -> None:
        if not self.path.exists():
            return
        lines = self.path.read_bytes().split(b"\n")
        try:
            head = json.loads(lines[0])
        except ValueError:
            head = {}
        if head.get("fingerprint") != self.fingerprint:
            os.replace(self.path, self.path.with_suffix(".old.jsonl"))
            return
        for line in lines[1:]:
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a torn last line: the job runs again
            key = (record["key"], int(record["replication"]))
            if "metrics" in record:
                self.results[key] = {k: (math.nan if v is None else float(v))
                                     for k, v in record["metrics"].items()}
                self.errors.pop(key, None)
            else:
                self.errors[key] = record.get("error", "")

    def _write(self, record: dict) -> None:
        line = json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n"
        os.write(self.fd, line.encode("utf-8"))  # one write on O_APPEND: whole lines only

    def record(self, key: str, replication: int, metrics: dict[str, float] | None,
               error: str | None) -> None:
        if metrics is not None:
            clean = {k: (None if math.isnan(v) else v) for k, v in metrics.items()}
            self._write({"key": key, "replication": replication, "metrics": clean})
            self.results[(key, replication)] = dict(metrics)
            self.errors.pop((key, replication), None)
        else:
            self._write({"key": key, "replication": replication, "error": error})
            self.errors[(key, replication)] = error or ""

    def close(self) -> None:
        os.close(self.fd)

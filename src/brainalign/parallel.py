"""One executor interface for the pipeline's tasks: serial, local processes, or Dask distributed.

A *task* is a small, picklable description (subject × model × chunk, a few numbers and paths).
Large arrays travel once, never per task: pass them as ``shared`` and every call of ``fn`` gets
them as keyword arguments —

* serial: the arrays themselves;
* local processes, and Dask with ``share="memmap"``: written once as ``.npy`` files and opened
  memory-mapped (read-only) by each worker, once per worker process;
* Dask with ``share="scatter"`` (the default when joining a remote scheduler, where workers may
  not see this machine's disk): scattered once to every worker with ``broadcast=True``.

Results come back in task order and equal a serial run's: tasks carry their own seeds, and
workers run single-threaded BLAS so the floating-point summation order does not depend on
how many threads a worker has.

>>> def square(task, offset):
...     return task * task + offset[0]
>>> with get_executor("serial") as ex:
...     ex.map(square, [1, 2, 3], shared={"offset": np.array([10])})
[11, 14, 19]
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from brainalign.errors import ConfigError, InputError
from brainalign.utils.hashing import hash_array
from brainalign.utils.io import atomic_save_npy
from brainalign.utils.progress import progress

EXECUTORS = ("serial", "processes", "dask")
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

# Per-process cache of memory-mapped shared arrays (path -> array), so a worker opens each once.
_OPENED: dict[str, np.ndarray] = {}


def _open_shared(specs: dict[str, str]) -> dict[str, np.ndarray]:
    out = {}
    for name, path in specs.items():
        arr = _OPENED.get(path)
        if arr is None:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
            _OPENED[path] = arr
        out[name] = arr
    return out


def _call_with_files(fn: Callable, task: Any, specs: dict[str, str]):
    return fn(task, **_open_shared(specs))


def _call_with_arrays(fn: Callable, task: Any, **arrays):
    return fn(task, **arrays)


def _limit_threads(n_threads: int = 1) -> None:
    for var in _THREAD_VARS:
        os.environ[var] = str(n_threads)
    with contextlib.suppress(ImportError):
        from threadpoolctl import threadpool_limits

        threadpool_limits(n_threads)
    with contextlib.suppress(ImportError):
        import torch

        torch.set_num_threads(n_threads)


#: how often (seconds) a pool worker checks that the process that started it is alive
PARENT_CHECK_SECONDS = 0.5


def _exit_with_parent(parent_pid: int, interval: float = PARENT_CHECK_SECONDS) -> None:
    """Watch ``parent_pid`` from a daemon thread; exit this process at once when it is gone.

    A worker whose parent was killed (``kill -9``, a SLURM time limit, an out-of-memory kill)
    would otherwise keep running, and holding its memory, until its task ends or forever.
    """
    import threading
    import time

    def watch():
        while True:
            time.sleep(interval)
            if os.getppid() != parent_pid:  # re-parented: the parent died
                os._exit(1)

    threading.Thread(target=watch, name="brainalign-parent-watch", daemon=True).start()


@contextlib.contextmanager
def _sigint_ignored():
    """Ignore Ctrl-C while the block starts processes (they inherit it); restore it after."""
    import signal

    try:
        before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


def _init_worker(n_threads: int, parent_pid: int) -> None:
    """A pool worker: single-threaded BLAS, Ctrl-C left to the parent (which stops the pool),
    and an exit as soon as the parent dies."""
    import signal

    _exit_with_parent(parent_pid)  # first: the imports below (torch) take seconds
    with contextlib.suppress(ValueError, OSError):  # not the main thread / no signals
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    _limit_threads(n_threads)


def _check_shared(shared: dict | None) -> dict[str, np.ndarray]:
    shared = dict(shared or {})
    for name, arr in shared.items():
        if not isinstance(arr, np.ndarray):
            raise InputError(
                f"shared[{name!r}]: expected a numpy array (shared values travel memory-mapped or "
                f"scattered), got {type(arr).__name__}; put small values in the task instead"
            )
        if arr.dtype == object:
            raise InputError(f"shared[{name!r}]: object arrays cannot be shared without pickling")
    return shared


#: seconds a run waits for a remote Dask scheduler to have a worker (compute.worker_timeout)
WORKER_TIMEOUT = 60.0


class Executor:
    """Run ``fn(task, **shared)`` over tasks. Subclasses: serial, processes, Dask.

    Use as a context manager (``with get_executor(...) as ex``) so workers and temporary files
    are released.
    """

    name = "base"
    n_workers = 1

    def map(
        self,
        fn: Callable,
        tasks: Sequence,
        *,
        shared: dict[str, np.ndarray] | None = None,
        on_result: Callable[[int, Any], None] | None = None,
        desc: str | None = None,
    ) -> list:
        """Apply ``fn`` to every task; return results in task order.

        Parameters
        ----------
        fn : callable
            A module-level function ``fn(task, **shared) -> result`` (importable by workers).
        tasks : sequence
            Small picklable task descriptions.
        shared : dict of str -> ndarray, optional
            Large read-only arrays every task needs; shipped once per worker, not per task.
        on_result : callable, optional
            Called in this process as ``on_result(index, result)`` as each task finishes (in
            completion order), e.g. to write the task's result to the cache at once so a killed
            run resumes from there.
        desc : str, optional
            Progress-bar label.

        Returns
        -------
        list
            ``[fn(tasks[0], **shared), fn(tasks[1], **shared), ...]``.
        """
        raise NotImplementedError

    def submit(self, fn: Callable, task: Any):
        """Start ``fn(task)``; returns a future (``.result()``, ``.done()``, ``.cancel()``)."""
        raise NotImplementedError

    def wait(self, futures: Sequence, timeout: float | None = None) -> tuple[set, set]:
        """Block until one of ``futures`` finishes or ``timeout`` seconds pass: (done, not done)."""
        from concurrent.futures import FIRST_COMPLETED
        from concurrent.futures import wait as cf_wait

        done, pending = cf_wait(futures, timeout=timeout, return_when=FIRST_COMPLETED)
        return set(done), set(pending)

    def close(self) -> None:
        """Release workers and temporary files."""

    def abort(self) -> None:
        """Stop at once (Ctrl-C): drop queued tasks, stop running ones, release everything.

        Results already written stay; a task stopped halfway leaves only a temporary folder,
        which the next run removes.
        """
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_workers={self.n_workers})"


class SerialExecutor(Executor):
    """Everything in this process, in task order (the reference the others must equal)."""

    name = "serial"

    def submit(self, fn, task):
        from concurrent.futures import Future

        fut: Future = Future()
        try:
            fut.set_result(fn(task))
        except Exception as exc:  # handed to the caller through the future, as a pool would
            fut.set_exception(exc)
        return fut

    def map(self, fn, tasks, *, shared=None, on_result=None, desc=None):
        shared = _check_shared(shared)
        results = []
        for i, task in enumerate(progress(tasks, total=len(tasks), desc=desc, unit="task")):
            res = fn(task, **shared)
            if on_result is not None:
                on_result(i, res)
            results.append(res)
        return results


class _FileSharing:
    """Writes shared arrays once as .npy files in a private folder (content-addressed)."""

    def __init__(self, folder: str | os.PathLike | None = None):
        self._own = folder is None
        self.folder = Path(folder or tempfile.mkdtemp(prefix="brainalign-shared-"))
        self.folder.mkdir(parents=True, exist_ok=True)

    def specs(self, shared: dict[str, np.ndarray]) -> dict[str, str]:
        out = {}
        for name, arr in shared.items():
            path = self.folder / f"{hash_array(arr)[:32]}.npy"
            if not path.exists():
                atomic_save_npy(path, arr)
            out[name] = str(path)
        return out

    def close(self):
        if self._own:
            shutil.rmtree(self.folder, ignore_errors=True)


class ProcessExecutor(Executor):
    """Local worker processes (``spawn``), shared arrays memory-mapped from .npy files.

    Parameters
    ----------
    n_workers : int
        Number of processes.
    shared_dir : path, optional
        Where shared arrays are written (default: a temporary folder removed on close).
    """

    name = "processes"

    def __init__(self, n_workers: int = 2, shared_dir: str | os.PathLike | None = None):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        if n_workers < 1:
            raise InputError(f"n_workers: must be >= 1, got {n_workers}")
        self.n_workers = n_workers
        self._files = _FileSharing(shared_dir)
        self._pool = ProcessPoolExecutor(
            max_workers=n_workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(1, os.getpid()),
        )
        # every worker starts now, with Ctrl-C ignored from its first instruction: the pool
        # would otherwise start one later, when two tasks first run at once, and a Ctrl-C in
        # its first moments (before its initializer) printed a traceback
        with _sigint_ignored():
            for _ in range(n_workers):
                self._pool.submit(os.getpid)

    def map(self, fn, tasks, *, shared=None, on_result=None, desc=None):
        from concurrent.futures import as_completed

        specs = self._files.specs(_check_shared(shared))
        futures = {
            self._pool.submit(_call_with_files, fn, t, specs): i for i, t in enumerate(tasks)
        }
        return _collect(
            futures, as_completed(futures), len(tasks), on_result, desc, cancel=_cancel_cf
        )

    def submit(self, fn, task):
        return self._pool.submit(fn, task)

    def close(self):
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._files.close()

    def abort(self):
        processes = list((getattr(self._pool, "_processes", None) or {}).values())
        self._pool.shutdown(wait=False, cancel_futures=True)
        for proc in processes:
            with contextlib.suppress(Exception):
                proc.kill()
        for proc in processes:
            with contextlib.suppress(Exception):
                proc.join(timeout=10)
        self._files.close()


class DaskExecutor(Executor):
    """Dask distributed: a ``LocalCluster`` on loopback, or an existing cluster's scheduler.

    Parameters
    ----------
    n_workers : int
        Workers of the local cluster (ignored when ``scheduler`` is given).
    scheduler : str, optional
        Address of a running scheduler (``tcp://host:8786``) or a scheduler JSON file; the
        cluster's own workers are used (see docs/cluster.md for SLURM with dask-jobqueue).
    share : {"auto", "memmap", "scatter"}
        How shared arrays reach workers. ``"memmap"`` needs a folder every worker can read
        (always true for a local cluster; a shared file system on a cluster); ``"scatter"``
        sends each array once to every worker. ``"auto"``: memmap locally, scatter remotely.
    shared_dir : path, optional
        Folder for memory-mapped shared arrays (default: temporary, removed on close).
    security : dict or distributed.Security, optional
        TLS for a ``tls://`` scheduler: ``{"ca_file": …, "cert": …, "key": …}`` (PEM files;
        ``key`` may be left out when ``cert`` holds it), or a ``distributed.Security``. Without
        it a ``tls://`` address uses Dask's own TLS configuration
        (``distributed.comm.tls.*``), and fails with a message when there is none.
    worker_timeout : float
        Seconds to wait for a remote scheduler to have at least one worker. A scheduler
        without workers accepts tasks and never runs them: without this limit the run waited
        forever. Past it, a :class:`~brainalign.errors.ConfigError` names the scheduler and
        its worker count.
    """

    name = "dask"

    def __init__(
        self,
        n_workers: int = 2,
        scheduler: str | None = None,
        share: str = "auto",
        shared_dir: str | os.PathLike | None = None,
        security=None,
        worker_timeout: float = WORKER_TIMEOUT,
    ):
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:  # pragma: no cover - dask[distributed] is a dependency
            raise ConfigError(
                "compute.executor = 'dask' needs dask[distributed] installed"
            ) from exc
        if share not in ("auto", "memmap", "scatter"):
            raise InputError(f"share: expected 'auto', 'memmap' or 'scatter', got {share!r}")
        self._cluster = None
        if scheduler is None:
            if n_workers < 1:
                raise InputError(f"n_workers: must be >= 1, got {n_workers}")
            env = {var: "1" for var in _THREAD_VARS}
            # workers started while Ctrl-C is ignored inherit that: a Ctrl-C at the terminal
            # reaches this process only, which stops the cluster (no tracebacks from workers);
            # a local cluster's workers exit by themselves when this process dies
            with _sigint_ignored():
                self._cluster = LocalCluster(
                    n_workers=n_workers,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=None,
                    env=env,
                )
            self._client = Client(self._cluster)
        else:
            address = check_scheduler(scheduler)
            sec = _security(address, security)
            try:
                self._client = Client(address, timeout="30s", security=sec)
            except (OSError, TimeoutError) as exc:
                raise ConfigError(
                    f"compute.scheduler: cannot reach a Dask scheduler at {address!r} "
                    f"({type(exc).__name__}: {exc}); start one (`dask scheduler`), check the "
                    "address, and for tls:// the certificates in compute.tls"
                ) from None
            except Exception as exc:  # distributed raises TypeError/ValueError on bad TLS etc.
                raise ConfigError(
                    f"compute.scheduler: could not connect to {address!r} "
                    f"({type(exc).__name__}: {exc}); check the address and, for tls://, "
                    "compute.tls (docs/cluster.md)"
                ) from None
            self._wait_for_workers(address, worker_timeout)
        self.scheduler = scheduler
        self.share = share if share != "auto" else ("memmap" if scheduler is None else "scatter")
        self._files = _FileSharing(shared_dir)
        self.n_workers = max(1, len(self._client.scheduler_info().get("workers", {})) or n_workers)

    def _wait_for_workers(self, address: str, timeout: float) -> None:
        """Wait up to ``timeout`` s for the scheduler at ``address`` to have a worker."""
        try:
            self._client.wait_for_workers(1, timeout=timeout)
        except (TimeoutError, OSError) as exc:
            try:
                n = len(self._client.scheduler_info().get("workers", {}))
            except Exception:  # the scheduler went away meanwhile  # noqa: BLE001
                n = 0
            with contextlib.suppress(Exception):
                self._client.close()
            raise ConfigError(
                f"compute.scheduler: the Dask scheduler at {address!r} has {n} worker(s) after "
                f"{timeout:g} s ({type(exc).__name__}); start workers (`dask worker "
                f"{address}`, or submit the worker jobs), or allow them longer with "
                "compute.worker_timeout"
            ) from None

    @property
    def client(self):
        return self._client

    def submit(self, fn, task):
        return self._client.submit(fn, task, pure=False)

    def wait(self, futures, timeout=None):
        from distributed import wait as dask_wait

        try:
            done, pending = dask_wait(futures, timeout=timeout, return_when="FIRST_COMPLETED")
        except TimeoutError:
            return set(), set(futures)
        return set(done), set(pending)

    def map(self, fn, tasks, *, shared=None, on_result=None, desc=None):
        from distributed import as_completed

        shared = _check_shared(shared)
        if self.share == "memmap":
            specs = self._files.specs(shared)
            submit = [
                self._client.submit(_call_with_files, fn, t, specs, pure=False) for t in tasks
            ]
        else:
            scattered = {
                name: self._client.scatter(arr, broadcast=True, hash=False)
                for name, arr in shared.items()
            }
            submit = [
                self._client.submit(_call_with_arrays, fn, t, pure=False, **scattered)
                for t in tasks
            ]
        futures = {f: i for i, f in enumerate(submit)}
        return _collect(
            futures, as_completed(submit), len(tasks), on_result, desc, cancel=_cancel_dask
        )

    def close(self):
        with contextlib.suppress(Exception):
            self._client.close()
        if self._cluster is not None:
            with contextlib.suppress(Exception):
                self._cluster.close()
        self._files.close()


#: a Dask address: protocol (optional), host (name, IPv4 or [IPv6]) and port
_ADDRESS = re.compile(
    r"^(?:(tcp|tls|ws|wss|ucx)://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$"
)


def check_scheduler(scheduler) -> str:
    """The scheduler address of ``scheduler`` (an address, or a scheduler JSON file), checked.

    Raises :class:`ConfigError` naming ``compute.scheduler`` and what to do when it is neither
    ``PROTOCOL://HOST:PORT`` nor a readable scheduler file holding one.
    """
    if not isinstance(scheduler, str) or not scheduler.strip():
        raise ConfigError(
            f"compute.scheduler: expected a Dask scheduler address (tcp://HOST:PORT) or the path "
            f"of a scheduler file, got {scheduler!r}"
        )
    scheduler = scheduler.strip()
    if "://" not in scheduler and (
        os.path.exists(os.path.expanduser(scheduler)) or scheduler.endswith(".json")
    ):
        path = Path(scheduler).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"compute.scheduler: scheduler file {path} does not exist; start the scheduler "
                f"with `dask scheduler --scheduler-file {path}` (or give tcp://HOST:PORT)"
            )
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"compute.scheduler: {path} is not a Dask scheduler file (not JSON: {exc}); it is "
                "written by `dask scheduler --scheduler-file PATH` or Client.write_scheduler_file"
            ) from None
        address = doc.get("address") if isinstance(doc, dict) else None
        if not isinstance(address, str):
            raise ConfigError(
                f"compute.scheduler: {path} has no scheduler 'address'; it is not a Dask scheduler "
                "file (written by `dask scheduler --scheduler-file PATH`)"
            )
        return _check_address(address, f"{path}: address")
    return _check_address(scheduler, "compute.scheduler")


def _check_address(address: str, key: str) -> str:
    m = _ADDRESS.match(address)
    if m is None or not 0 < int(m.group(3)) < 65536:
        raise ConfigError(
            f"{key}: {address!r} is not a Dask scheduler address; expected tcp://HOST:PORT "
            "(e.g. tcp://10.0.0.5:8786), tls://HOST:PORT with compute.tls, or the path of a "
            "scheduler JSON file"
        )
    return address if m.group(1) else f"tcp://{address}"


def _security(address: str, security):
    """The ``distributed.Security`` for ``address`` (None for plain tcp without settings)."""
    from distributed import Security

    if isinstance(security, Security):
        return security
    if security:
        files = {k: security.get(k) for k in ("ca_file", "cert", "key")}
        for k, path in files.items():
            if path is None and k == "key":
                continue
            if path is None or not Path(path).expanduser().is_file():
                raise ConfigError(
                    f"compute.tls.{k}: {'missing' if path is None else repr(str(path))} — "
                    "expected a PEM file (the CA certificate, this client's certificate and its "
                    "key); see docs/cluster.md"
                )
        cert, key = (
            str(Path(files[k]).expanduser()) if files[k] else None for k in ("cert", "key")
        )
        return Security(
            tls_ca_file=str(Path(files["ca_file"]).expanduser()),
            tls_client_cert=cert,
            tls_client_key=key,
            require_encryption=True,
        )
    if address.startswith("tls://"):
        import dask

        if not dask.config.get("distributed.comm.tls.ca-file", None):
            raise ConfigError(
                f"compute.scheduler: {address!r} is a TLS address but no certificates are set; "
                "give compute.tls = {ca_file, cert, key} (PEM files) or Dask's "
                "distributed.comm.tls settings; see docs/cluster.md"
            )
        return Security()
    return None


def _cancel_cf(futures):
    for f in futures:
        f.cancel()


def _cancel_dask(futures):
    for f in futures:
        f.cancel()


def _collect(futures: dict, completed, n: int, on_result, desc, cancel) -> list:
    results: list = [None] * n
    bar = progress(total=n, desc=desc, unit="task")
    try:
        for fut in completed:
            i = futures[fut]
            try:
                res = fut.result()
            except BaseException:
                cancel(futures)
                raise
            results[i] = res
            if on_result is not None:
                on_result(i, res)
            bar.update(1)
    finally:
        bar.close()
    return results


def get_executor(
    kind: str = "serial",
    workers: int = 1,
    scheduler: str | None = None,
    **kwargs,
) -> Executor:
    """Build an executor by name.

    Parameters
    ----------
    kind : {"serial", "processes", "dask"}
        ``"dask"`` starts a loopback ``LocalCluster`` with ``workers`` workers unless
        ``scheduler`` names a running one.
    workers : int
        Number of worker processes.
    scheduler : str, optional
        Dask scheduler address or scheduler file (implies ``kind="dask"``).
    **kwargs
        Passed on (``shared_dir``; for Dask also ``share`` and ``security``).
    """
    if scheduler is not None:
        kind = "dask"
    if kind == "serial":
        return SerialExecutor()
    if kind == "processes":
        return ProcessExecutor(workers, **kwargs)
    if kind == "dask":
        return DaskExecutor(workers, scheduler=scheduler, **kwargs)
    raise InputError(f"kind: expected one of {EXECUTORS}, got {kind!r}")


__all__ = [
    "DaskExecutor",
    "EXECUTORS",
    "Executor",
    "ProcessExecutor",
    "SerialExecutor",
    "get_executor",
]

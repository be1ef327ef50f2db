"""Worker processes that can always be stopped: for engines that may hang or crash.

Each worker is a fresh interpreter ("spawn": a forked copy of a process that runs
onnxruntime or torch thread pools can deadlock) that runs a setup once (loading its
voices) and then the jobs it is handed, one at a time, reporting progress as it goes.
The parent watches the clock: a worker that makes no progress within its job's timeout,
or does not finish its setup within the group's, is killed and the run fails with
:class:`JobFailed` (the caller says which turn). A worker that dies is reported the same
way, never waited for.

No worker outlives its parent: each leads its own session (so stopping it also stops
every program its job started, and a terminal's Ctrl-C reaches only the parent, which
stops them all), and asks the kernel to kill it when the parent dies, even by SIGKILL.
On any exception in the parent (Ctrl-C, SIGTERM, an error) every worker's session is
killed before the exception goes on.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import math
import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any, Protocol

import psutil

from pipeline.errors import PipelineError

_PR_SET_PDEATHSIG = 1  # linux/prctl.h
# What a spare imports while it waits to be given its engine: the synthesize stage (numpy,
# pedalboard) and the loudness meter that levels each turn (scipy.signal: about 0.9 s).
SPEAKER_IMPORTS = ("pipeline.synthesize", "pyloudnorm")
GRACE_S = 5.0


@dataclass(frozen=True)
class Group:
    """Workers that share a setup (e.g. the engines of one voice)."""

    setup: Callable[..., None]
    """Run once in each worker before its first job (a module-level function)."""

    args: tuple[Any, ...]
    """Arguments of ``setup``."""

    workers: int
    """How many processes it starts with, at most (never more than it has jobs); a
    worker of another group that runs out of work may join it (``_rebalance``)."""

    timeout: float
    """Seconds ``setup`` may take."""


@dataclass(frozen=True)
class Job:
    """One piece of work: ``task(*args, progress=...)`` in a worker of ``group``."""

    key: int
    """The caller's name for it, given back with its result."""

    group: int
    """Index of the group whose workers run it."""

    task: Callable[..., Any]
    """A module-level function; it calls ``progress()`` as it goes."""

    args: tuple[Any, ...]
    """Arguments of ``task``."""

    timeout: float
    """Seconds it may run without calling ``progress()`` (``GRACE_S`` more are given, so
    a task with a timeout of its own reports first, in its own words)."""

    steps: int = 1
    """How many times it calls ``progress()`` (a turn's sentences): an executor that
    cannot hear progress allows ``timeout`` for each."""

    memory_mb: float = 0.0
    """Memory it needs at its peak beyond what its worker holds before it (an estimate):
    local workers start it only when that fits in their budget."""

    step_mb: tuple[float, ...] = ()
    """What each step needs (a turn's sentences), if known: the peak is in one of them
    (``LocalWorkers.crowded`` is up only while it runs)."""


class JobFailed(Exception):
    """A job raised, timed out or lost its worker."""

    def __init__(self, key: int, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


@dataclass
class _Worker:
    process: BaseProcess
    conn: Connection
    group: int
    deadline: float
    ready: bool = False
    key: str = ""  # its setup (``setup_key``)
    job: Job | None = None
    started: float = field(default_factory=time.monotonic)
    peak_mb: float = 0.0  # what it is expected to hold at its running job's peak (``_next``)
    room_mb: float = math.inf  # what its running job may take before the render is past its budget
    step: int = 0  # the running job's steps done (progress reports)


class Executor(Protocol):
    """Where jobs run: worker processes here (``LocalWorkers``) or a Ray cluster
    (``pipeline/raypool.py``)."""

    @property
    def slots(self) -> int:
        """How many jobs it runs at once."""
        ...

    def run(self, groups: Sequence[Group], jobs: Iterable[Job]) -> Iterator[tuple[int, Any]]:
        """Run ``jobs`` on the groups' workers; yield ``(key, result)`` as each finishes."""
        ...


@dataclass
class Spares:
    """Worker processes started before their work is known, each importing what every
    worker needs while this process still reads the script; a run gives each the setup
    of the group it joins (``_start``)."""

    idle: list[tuple[BaseProcess, Connection]] = field(default_factory=list)
    """Started and not yet given a group."""

    keep: bool = False
    """Keep each run's workers, set up, for the next run (``render --watch``): a run
    takes a kept worker whose setup matches one of its groups before starting others."""

    loaded: list[_Worker] = field(default_factory=list)
    """Workers a run kept (``keep``), idle, their setup done."""

    def start(self, count: int, prepare: tuple[str, ...]) -> None:
        """Start ``count`` spares that import the modules ``prepare`` names."""
        context = multiprocessing.get_context("spawn")
        self.idle.extend(_spawn(context, prepare) for _ in range(count))

    def warm(self, prepare: tuple[str, ...] = SPEAKER_IMPORTS) -> None:
        """Start one spare importing ``prepare``, unless a worker already waits (a spare,
        or one a run kept)."""
        if not (self.idle or self.loaded):
            self.start(1, prepare)

    def take(self) -> tuple[BaseProcess, Connection] | None:
        """A spare, if one is left."""
        return self.idle.pop(0) if self.idle else None

    def adopt(self, index: int, group: Group, count: int) -> list[_Worker]:
        """Up to ``count`` kept workers set up as ``group`` is, now its (as group ``index``)."""
        key = setup_key(group)
        taken = [w for w in self.loaded if w.key == key and w.process.is_alive()][:count]
        self.loaded = [w for w in self.loaded if w not in taken]
        for worker in taken:
            worker.group = index
        return taken

    def held_mb(self) -> float:
        """What the waiting workers hold, resident MB: a run counts it against its budget
        (a kept Piper worker holds about 250 MB between a watch's renders)."""
        processes = [process for process, _ in self.idle] + [w.process for w in self.loaded]
        return sum(resident_mb(process.pid) for process in processes)

    def close(self, loaded: bool = False) -> None:
        """End the spares no run took (at once: they hold nothing), and with ``loaded``
        the workers runs kept."""
        idle, self.idle = self.idle, []
        ended = [_Worker(process, conn, -1, math.inf) for process, conn in idle]
        if loaded:
            ended, self.loaded = ended + self.loaded, []
        _stop(ended, clean=False)


@dataclass(frozen=True)
class LocalWorkers:
    """Worker processes on this machine, started for each run (see above)."""

    slots: int
    """How many at most."""

    memory_mb: float | None = None
    """Most memory this process and its workers may hold at once (resident MB): a job
    whose ``Job.memory_mb`` would take them past it waits (None: no limit)."""

    beside_mb: float = 0.0
    """Of ``memory_mb``, what the workers leave for what this process runs meanwhile."""

    crowded: threading.Event = field(default_factory=threading.Event, compare=False)
    """Set while a job runs that is expected to take the render past ``memory_mb`` on its
    own (it runs when nothing else does): what this process runs beside the workers then
    waits (``pipeline/ahead.py``)."""

    spares: Spares = field(default_factory=Spares, compare=False)
    """Workers started ahead (``warmed``): a run takes them before it starts others."""

    def run(self, groups: Sequence[Group], jobs: Iterable[Job]) -> Iterator[tuple[int, Any]]:
        """Run ``jobs`` on the groups' worker processes (``run``)."""
        return run(groups, jobs, self.memory_mb, self.crowded, self.beside_mb, self.spares)

    @contextlib.contextmanager
    def warmed(self, prepare: tuple[str, ...] = SPEAKER_IMPORTS) -> Iterator[None]:
        """Within: a worker is started now unless one already waits (``Spares``), to
        import ``prepare`` beside this process (an edit's one turn then waits for no
        interpreter to start); the spares no run took are ended on the way out."""
        self.spares.warm(prepare)
        try:
            yield
        finally:
            self.spares.close()


def run(
    groups: Sequence[Group],
    jobs: Iterable[Job],
    memory_mb: float | None = None,
    crowded: threading.Event | None = None,
    beside_mb: float = 0.0,
    spares: Spares | None = None,
) -> Iterator[tuple[int, Any]]:
    """Run ``jobs`` on the groups' workers; yield ``(key, result)`` as each finishes.
    A job is started only while this process, its workers and the job's memory fit in
    ``memory_mb`` less ``beside_mb`` (left for what this process runs beside them), or
    when nothing else runs (``_next``); ``crowded`` is set while a job runs that is
    expected to take them past ``memory_mb``. Workers are taken from ``spares`` first;
    those still waiting there count against the budget."""
    queues: list[deque[Job]] = [deque() for _ in groups]
    for job in jobs:
        queues[job.group].append(job)
    context = multiprocessing.get_context("spawn")
    workers: list[_Worker] = []
    clean = False
    try:
        for index, group in enumerate(groups):
            count = min(group.workers, len(queues[index]))
            workers += spares.adopt(index, group, count) if spares else []
            while sum(1 for w in workers if w.group == index) < count:
                workers.append(_start(context, index, group, spares))
        left = sum(len(queue) for queue in queues)
        while left:
            _rebalance(context, groups, queues, workers)
            for worker in workers:
                queue = queues[worker.group]
                if worker.ready and worker.job is None and queue:
                    # Read as the job starts: a spare taken since holds as a worker.
                    held = spares.held_mb() if spares and memory_mb is not None else 0.0
                    worker.job = _next(queue, worker, workers, memory_mb, beside_mb, held)
                    if worker.job is not None:
                        worker.conn.send((worker.job.task, worker.job.args))
                        worker.deadline = time.monotonic() + worker.job.timeout + GRACE_S
            if crowded is not None:
                _flag(crowded, any(_beyond(w) for w in workers))
            soonest = min(w.deadline for w in workers)
            handles = [w.conn for w in workers] + [w.process.sentinel for w in workers]
            timeout = None if soonest == math.inf else max(0.0, soonest - time.monotonic())
            ready = wait(handles, timeout=timeout)
            for worker in workers:
                if worker.conn in ready or worker.process.sentinel in ready:
                    result = _receive(worker, groups)
                    if result is not None:
                        left -= 1
                        yield result
                if time.monotonic() > worker.deadline:
                    _timed_out(worker, groups)
        clean = True
    finally:
        if crowded is not None:
            crowded.clear()
        if clean and spares is not None and spares.keep:
            spares.loaded += workers  # idle, set up: the next run takes them
        else:
            _stop(workers, clean)


def _next(
    queue: deque[Job],
    worker: _Worker,
    workers: list[_Worker],
    memory_mb: float | None,
    beside_mb: float = 0.0,
    held_mb: float = 0.0,
) -> Job | None:
    """The job an idle ``worker`` takes: the first in the queue whose memory fits in what
    ``memory_mb`` less ``beside_mb`` leaves beside this process, the other workers as
    they are, or will be at their running jobs' peaks, and ``held_mb`` (workers waiting
    outside the run); None (wait) if none does. A job runs when nothing else does, even
    if it takes them past ``memory_mb`` (``_beyond``)."""
    holds = resident_mb(worker.process.pid)
    fits = math.inf  # room in the budget
    if memory_mb is not None:
        others = sum(_expected_mb(w) for w in workers if w is not worker)
        fits = memory_mb - beside_mb - resident_mb(os.getpid()) - others - holds - held_mb
    room = fits if any(w.job is not None for w in workers) else math.inf
    for index in range(len(queue)):
        if queue[index].memory_mb <= room:
            job = queue[index]
            del queue[index]
            worker.peak_mb, worker.room_mb, worker.step = holds + job.memory_mb, fits + beside_mb, 0
            return job
    return None


def _beyond(worker: _Worker) -> bool:
    """Whether the worker's running job is at a step expected to take the render past its
    budget (one that ran as nothing else did)."""
    job = worker.job
    if job is None:
        return False
    steps = job.step_mb
    now = steps[worker.step] if worker.step < len(steps) else (0.0 if steps else job.memory_mb)
    return now > worker.room_mb


def _flag(event: threading.Event, on: bool) -> None:
    if on:
        event.set()
    else:
        event.clear()


def _expected_mb(worker: _Worker) -> float:
    """What a worker holds now, or at its running job's peak if that is more."""
    now = resident_mb(worker.process.pid)
    return max(now, worker.peak_mb) if worker.job is not None else now


def resident_mb(pid: int | None) -> float:
    """A process's resident memory in MB (0 if it is gone or not started yet)."""
    if pid is None:
        return 0.0
    try:
        return psutil.Process(pid).memory_info().rss / 2**20
    except psutil.Error:
        return 0.0


def tree_mb() -> float:
    """Resident memory in MB of this process and every process it started."""
    me = psutil.Process()
    try:
        family = [me, *me.children(recursive=True)]
    except psutil.Error:
        family = [me]
    return sum(resident_mb(process.pid) for process in family)


def _rebalance(
    context: Any, groups: Sequence[Group], queues: list[deque[Job]], workers: list[_Worker]
) -> None:
    """Hand an idle worker whose group has nothing left to the group with the most jobs
    waiting per worker: engines differ several times in speed (Piper against hibari), so
    a pool split by the text each voice has is left with one voice still speaking on one
    core while the other core idles. The worker is ended and one of the other group
    started in its place (its engine loaded), so no process holds two engines."""
    for worker in list(workers):
        if not (worker.ready and worker.job is None and not queues[worker.group]):
            continue
        count = {g: sum(1 for w in workers if w.group == g) for g in range(len(groups))}
        waiting = [g for g in range(len(groups)) if len(queues[g]) > 2 * count[g]]
        if not waiting:
            return
        target = max(waiting, key=lambda g: len(queues[g]) / max(1, count[g]))
        workers.remove(worker)
        _stop([worker], clean=True)  # idle: it reads EOF and exits
        workers.append(_start(context, target, groups[target]))


def _start(context: Any, index: int, group: Group, spares: Spares | None = None) -> _Worker:
    """A worker of ``group``: a spare if one is left, else a new process."""
    process, conn = (spares.take() if spares else None) or _spawn(context, ())
    with contextlib.suppress(OSError):  # a spare that died is reported as it is read
        conn.send((group.setup, group.args))
    return _Worker(process, conn, index, time.monotonic() + group.timeout, key=setup_key(group))


def setup_key(group: Group) -> str:
    """What a worker was set up with: a kept one (or a Ray actor) serves a group with the
    same."""
    return f"{group.setup.__module__}.{group.setup.__qualname__} {group.args!r}"


def _spawn(context: Any, prepare: tuple[str, ...]) -> tuple[BaseProcess, Connection]:
    parent_end, child_end = context.Pipe()
    process = context.Process(target=_serve, args=(child_end, os.getpid(), prepare), daemon=True)
    process.start()
    child_end.close()
    return process, parent_end


def _receive(worker: _Worker, groups: Sequence[Group]) -> tuple[int, Any] | None:
    """Read what the worker sent: a result, progress or a failure (raised)."""
    try:
        while worker.conn.poll():
            kind, *rest = worker.conn.recv()
            if kind == "ready":
                worker.ready, worker.deadline = True, math.inf
            elif kind == "progress" and worker.job is not None:
                worker.deadline = time.monotonic() + worker.job.timeout + GRACE_S
                worker.step += 1
            elif kind == "done" and worker.job is not None:
                key, worker.job, worker.deadline = worker.job.key, None, math.inf
                return key, rest[0]
            elif kind == "failed" and worker.job is not None:
                raise JobFailed(worker.job.key, rest[0])
            elif kind == "setup-failed":
                message, path, line, hint = rest
                raise PipelineError(message, path=path, line=line, hint=hint)
    except (EOFError, OSError):
        pass  # the worker is gone: said below
    if worker.process.is_alive():
        return None
    worker.process.join()
    died = _exit_status(worker.process.exitcode)
    if worker.job is not None:
        raise JobFailed(worker.job.key, f"its worker process died ({died})")
    raise PipelineError(
        f"a worker process died while loading its engine ({died})",
        hint="run 'pipeline check' to see whether the voice loads; memory may be short",
    )


def _timed_out(worker: _Worker, groups: Sequence[Group]) -> None:
    if worker.job is not None:
        raise JobFailed(
            worker.job.key,
            f"no progress for {worker.job.timeout + GRACE_S:g} s (the engine is stuck; it "
            "was stopped)",
        )
    raise PipelineError(
        f"a worker did not load its engine within {groups[worker.group].timeout:g} s",
        hint="the engine may be stuck at load: try 'pipeline check', which loads it alone",
    )


def _exit_status(code: int | None) -> str:
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


def _stop(workers: list[_Worker], clean: bool) -> None:
    """End every worker: politely after a clean run, at once (with its whole process
    group) otherwise."""
    if not clean:
        for worker in workers:
            _kill(worker.process)
    for worker in workers:
        with contextlib.suppress(OSError):
            worker.conn.close()  # an idle worker reads EOF and exits
    deadline = time.monotonic() + 5.0
    for worker in workers:
        worker.process.join(timeout=max(0.0, deadline - time.monotonic()))
        if worker.process.exitcode is None:
            _kill(worker.process)
        worker.process.join(timeout=5.0)


def _kill(process: BaseProcess) -> None:
    """SIGKILL the worker and every process of its session: what its job started, even
    in process groups of their own."""
    if process.pid is None:
        return
    for pid in [process.pid, *_session(process.pid)]:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def _session(sid: int) -> list[int]:
    """The processes of session ``sid`` (Linux /proc)."""
    members = []
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat", encoding="ascii") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except (OSError, IndexError, UnicodeDecodeError):
                continue
            if fields[3] == str(sid):  # state, ppid, pgrp, session
                members.append(int(entry.name))
    return members


def die_with_parent(parent: int) -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux), and exit now
    if the parent is already gone."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)


def _serve(conn: Connection, parent: int, prepare: tuple[str, ...]) -> None:
    """A worker's life: import ``prepare``'s modules, take its setup from the parent and
    run it, then run jobs until the parent closes the pipe."""
    os.setsid()  # its own session: Ctrl-C goes to the parent, which stops the workers
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(parent)
    try:
        for module in prepare:
            with contextlib.suppress(ImportError):  # only a head start: setup says what fails
                importlib.import_module(module)
        setup, args = conn.recv()
        _work(conn, setup, args)
    except (EOFError, OSError):
        os._exit(0)  # the parent closed the pipe or is gone: nothing to report to


def _work(conn: Connection, setup: Callable[..., None], args: tuple) -> None:
    from pipeline.engines import EngineFailure  # here, not at the top: a spare starts light

    try:
        setup(*args)
    except PipelineError as exc:
        path = str(exc.path) if exc.path is not None else None
        conn.send(("setup-failed", exc.message, path, exc.line, exc.hint))
        return
    except Exception as exc:  # reported to the parent, which stops the run
        conn.send(("setup-failed", f"{type(exc).__name__}: {exc}", None, None, None))
        return
    conn.send(("ready",))

    def progress() -> None:
        conn.send(("progress",))

    while True:
        task, job_args = conn.recv()
        try:
            result = task(*job_args, progress=progress)
        except EngineFailure as exc:  # the engine's own words
            conn.send(("failed", str(exc)))
            continue
        except Exception as exc:  # the parent names the turn
            conn.send(("failed", f"{type(exc).__name__}: {exc}"))
            continue
        conn.send(("done", result))
        give_back_memory()


def give_back_memory() -> None:
    """Return the heap's free pages to the system after a job (glibc keeps them): an
    engine's large per-sentence buffers would otherwise stay in the worker for good."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)

"""Synthesis on a Ray cluster: ``pipeline render --executor ray``.

The executor of ``pipeline/workers.py`` with Ray actors for workers: each actor is a
process somewhere on the cluster that loads its group's engines once (a host's voice)
and then speaks the turns it is handed, exactly as a local worker does, so the audio is
the same sample for sample (engines run on one thread either way). The render itself
stays here: the cache keys, the cache, mixing, mastering and encoding; only the turns to
speak go out, and come back as audio through Ray's object store.

Actors outlive a render: rendering several scripts in one call (a season) hands every
script's turns to the same actors, so each voice is loaded once per worker for the whole
season, not once per episode. ``close`` ends them.

Every node needs this project installed at the same path, in the same environment (the
voices and models are read from the paths the voice files give). Ray is an optional
extra: ``pip install -e '.[ray]'``.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.errors import PipelineError
from pipeline.workers import GRACE_S, Group, Job, JobFailed, setup_key


class _Worker:
    """A Ray actor's body: its group's setup once, then jobs."""

    def __init__(self, setup: Callable[..., None], args: tuple[Any, ...]) -> None:
        setup(*args)

    def ready(self) -> bool:
        return True

    def run(self, task: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        return task(*args, progress=lambda: None)


@dataclass
class RayPool:
    """Actors on the Ray cluster at ``address`` ("auto": the one this machine is part of,
    or ``RAY_ADDRESS``)."""

    address: str = "auto"
    """The cluster's address (``ray start --head`` prints it)."""

    started: int = 0
    """Actors started so far (each loads its group's engines once)."""

    _actors: dict[str, list[Any]] = field(default_factory=dict)

    def _ray(self) -> Any:
        try:
            import ray
        except ImportError:
            raise PipelineError(
                "--executor ray needs Ray, which is not installed",
                hint="pip install -e '.[ray]'",
            ) from None
        if not ray.is_initialized():
            _reachable(self.address)
            try:
                ray.init(address=self.address, logging_level="ERROR", log_to_driver=False)
            except (ConnectionError, RuntimeError) as exc:
                raise PipelineError(
                    f"cannot reach the Ray cluster at {self.address}: {exc}",
                    hint="start one with 'ray start --head', or give its address",
                ) from None
        return ray

    @property
    def slots(self) -> int:
        """The cluster's CPUs: one engine thread each."""
        return max(1, int(self._ray().cluster_resources().get("CPU", 1)))

    def run(self, groups: Sequence[Group], jobs: Iterable[Job]) -> Iterator[tuple[int, Any]]:
        """Run ``jobs`` on each group's actors, a job per actor at a time; yield
        ``(key, result)`` as each finishes."""
        ray = self._ray()
        queues: list[deque[Job]] = [deque() for _ in groups]
        for job in jobs:
            queues[job.group].append(job)
        idle = [
            deque(self._pool(ray, group, len(queue)))
            for group, queue in zip(groups, queues, strict=True)
        ]
        running: dict[Any, tuple[Job, Any, float]] = {}  # ref -> job, actor, deadline
        try:
            yield from self._dispatch(ray, queues, idle, running)
        finally:  # stopped or failed: the cluster stops on these turns too
            for ref in running:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)

    def _dispatch(
        self,
        ray: Any,
        queues: list[deque[Job]],
        idle: list[deque[Any]],
        running: dict[Any, tuple[Job, Any, float]],
    ) -> Iterator[tuple[int, Any]]:
        while running or any(queues):
            for index, queue in enumerate(queues):
                while queue and idle[index]:
                    job, actor = queue.popleft(), idle[index].popleft()
                    ref = actor.run.remote(job.task, job.args)
                    deadline = time.monotonic() + job.timeout * max(1, job.steps) + GRACE_S
                    running[ref] = (job, actor, deadline)
            soonest = min(deadline for _, _, deadline in running.values())
            done, _ = ray.wait(
                list(running), num_returns=1, timeout=max(0.0, soonest - time.monotonic())
            )
            for ref in done:
                job, actor, _ = running.pop(ref)
                yield job.key, self._result(ray, ref, job)
                idle[job.group].append(actor)
            self._check_deadlines(ray, running)

    def _pool(self, ray: Any, group: Group, jobs: int) -> list[Any]:
        """The group's actors, started (and their engines loaded) the first time."""
        actors = self._actors.setdefault(setup_key(group), [])
        remote = ray.remote(num_cpus=1)(_Worker)
        while len(actors) < min(group.workers, jobs):
            actors.append(remote.remote(group.setup, group.args))
            self.started += 1
        try:
            ray.get([actor.ready.remote() for actor in actors], timeout=group.timeout)
        except ray.exceptions.GetTimeoutError:
            raise PipelineError(
                f"a Ray worker did not load its engine within {group.timeout:g} s"
            ) from None
        except ray.exceptions.RayError as exc:
            raise PipelineError(f"a Ray worker could not load its engine: {_cause(exc)}") from None
        return actors

    @staticmethod
    def _result(ray: Any, ref: Any, job: Job) -> Any:
        try:
            return ray.get(ref)
        except ray.exceptions.RayError as exc:
            raise JobFailed(job.key, _cause(exc)) from None

    @staticmethod
    def _check_deadlines(ray: Any, running: dict[Any, tuple[Job, Any, float]]) -> None:
        for job, actor, deadline in running.values():
            if time.monotonic() > deadline:
                ray.kill(actor)
                raise JobFailed(job.key, "no result in time on the Ray cluster (stopped)")

    def close(self) -> None:
        """End every actor."""
        if not self._actors:
            return
        ray = self._ray()
        for actors in self._actors.values():
            for actor in actors:
                with contextlib.suppress(Exception):
                    ray.kill(actor)
        self._actors.clear()


def _reachable(address: str) -> None:
    """Fail at once if a host:port address does not answer (Ray itself retries for
    minutes)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # "auto", or a form Ray resolves itself
    try:
        socket.create_connection((host, int(port)), timeout=10).close()
    except OSError as exc:
        raise PipelineError(
            f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}",
            hint="start one with 'ray start --head', or give its address",
        ) from None


def _cause(exc: Exception) -> str:
    """The engine's own words from a Ray error, not Ray's traceback."""
    cause = getattr(exc, "cause", None)
    return str(cause) if cause is not None else str(exc).strip().splitlines()[-1]

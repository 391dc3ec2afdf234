"""Flow sources parsed beside the event loop, in a small pool of processes with a time limit.

Reading a flow (YAML with positions, pydantic, the checks) is pure Python whose cost grows with
the number of values in it: a 1 MiB flow of short list items takes some 20 s of CPU. In the
server's own process that work would hold the interpreter's lock, and every other request would
wait for it. So every flow the server reads goes through :class:`FlowParser`: bodies sent to
create, update, validate or replace a namespace's flows, and stored revisions loaded by the
queue, the scheduler, webhooks and the UI.

Why processes and not threads: a parse in a thread cannot be stopped, and it still competes
with the event loop for the interpreter's lock. A process can be killed when its time is up
(``flowParseSeconds``, for all the flows of one request together), and its memory goes with it.
The other limits bound what reaches a parser at all: a flow's size (413), how many flows one
request carries (413), and, in the loader, nesting depth and alias expansion (422).

Stored revisions were checked when saved; loading one still goes through the pool (a valid 1 MiB
flow takes seconds), and the result is kept (:data:`CACHE_SOURCE_BYTES` of sources at most), so
a revision is parsed once per server process.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import multiprocessing
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pebble import ProcessExpired, ProcessPool

from executor.errors import FlowError, FlowLoadError, UsageError
from executor.flow.loaded import LoadedFlow
from executor.flow.loader import load_flow_text
from executor.server.errors import BodyTooLarge
from executor.store.flows import StoredFlow

SOURCE_NAME = "flow"
"""How a flow sent over the API is named in its problems (``flow:LINE:COLUMN``)."""
CACHE_SOURCE_BYTES = 32 * 1024 * 1024
TASKS_PER_PROCESS = 200  # then the process is replaced: what a big parse left in memory goes
# the line's own newline belongs to the separator: the next flow's source starts on its first line
_DOCUMENT_SEPARATOR = re.compile(r"^---[ \t]*(?:\r?\n|\Z)", re.MULTILINE)
_Key = tuple[str, str, int, str]  # a stored revision: namespace, id, revision, source digest


@dataclass(frozen=True)
class BodyLimits:
    """What one request's flows may be: each flow's size, how many flows."""

    max_flow_bytes: int
    max_documents: int


def split_documents(text: str) -> list[str]:
    """The flows of a multi-document body (``---`` on a line of its own), empty ones dropped."""
    return [part for part in _DOCUMENT_SEPARATOR.split(text) if part.strip()]


# ----- what runs in a parse process (module-level, so the process can import it)


def parse_body(raw: bytes, limits: BodyLimits, many: bool) -> list[LoadedFlow | str]:
    """Each flow of a request body, loaded, or its problems as one located text.

    Raises:
        UsageError: the body is not UTF-8.
        BodyTooLarge: a flow is larger than allowed, or there are too many.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError("the flow is not UTF-8 text") from None
    documents = split_documents(text) if many else [text]
    if len(documents) > limits.max_documents:
        raise BodyTooLarge(
            f"{len(documents)} flows in one request; at most {limits.max_documents}"
            " (maxFlowDocuments)"
        )
    for index, document in enumerate(documents):
        if len(document.encode("utf-8", "surrogatepass")) > limits.max_flow_bytes:
            which = f"flow {index + 1}" if many else "the flow"
            raise BodyTooLarge(f"{which} is larger than {limits.max_flow_bytes} bytes")
    return [_load(document, Path(SOURCE_NAME)) for document in documents]


def parse_source(text: str, source: str) -> LoadedFlow | str:
    """One stored flow, loaded, or its problems."""
    return _load(text, Path(source))


_ENVS: Mapping[str, str] | None = None
"""The server's ``envs`` (its ``Settings.envs``), handed to each parse process as it starts."""


def _use_envs(envs: Mapping[str, str] | None) -> None:
    global _ENVS
    _ENVS = envs


def _load(text: str, source: Path) -> LoadedFlow | str:
    try:
        return load_flow_text(text, source, _ENVS)
    except FlowError as exc:  # as text: our errors do not all survive pickling
        return str(exc)


# ----- the server's side


class FlowParser:
    """Parses flows in up to ``processes`` processes, each request given ``seconds`` at most.

    The pool starts on first use and :meth:`close` stops it. Safe to use from any thread and
    from the event loop (:meth:`parse_request`).
    """

    def __init__(
        self, processes: int = 1, seconds: float = 20.0, envs: Mapping[str, str] | None = None
    ) -> None:
        self.processes = processes
        self.seconds = seconds
        self.envs = dict(envs) if envs is not None else None
        self._pool: ProcessPool | None = None
        self._lock = threading.Lock()
        self._cache: OrderedDict[_Key, tuple[LoadedFlow | str, int]] = OrderedDict()
        self._cached_bytes = 0

    def _started(self) -> ProcessPool:
        with self._lock:
            if self._pool is None:
                context = multiprocessing.get_context("forkserver")  # never fork a threaded server
                context.set_forkserver_preload(["executor.server.flow_parser"])
                self._pool = ProcessPool(
                    max_workers=self.processes,
                    max_tasks=TASKS_PER_PROCESS,
                    context=context,
                    initializer=_use_envs,
                    initargs=(self.envs,),
                )
            return self._pool

    def close(self) -> None:
        """Stop the parse processes (a parse still running is killed)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.stop()  # type: ignore[no-untyped-call]
            pool.join()

    async def parse_request(
        self, raw: bytes, limits: BodyLimits, *, many: bool
    ) -> list[LoadedFlow | FlowError]:
        """The flows of a request body (``many``: several documents split on ``---``).

        Raises:
            BodyTooLarge: a flow too large, or too many (413).
            UsageError: not UTF-8 (422).
            FlowLoadError: parsing took longer than allowed, or its process died (422).
        """
        future = self._started().schedule(parse_body, (raw, limits, many), timeout=self.seconds)
        try:
            results = await asyncio.wrap_future(future)
        except BaseException as exc:
            future.cancel()  # type: ignore[no-untyped-call]  # a client gone: its parse stops
            raise self._failure(exc, SOURCE_NAME) from None
        return [FlowError(r) if isinstance(r, str) else r for r in results]

    def load_stored(self, stored: StoredFlow) -> LoadedFlow:
        """A stored revision, loaded (kept for next time); blocks the calling thread, never
        call it on the event loop.

        Raises:
            FlowError: the revision no longer loads, or took longer than allowed.
        """
        source = f"{stored.namespace}.{stored.id}@{stored.revision}"
        digest = hashlib.sha256(stored.source.encode("utf-8", "surrogatepass")).hexdigest()
        key = (stored.namespace, stored.id, stored.revision, digest)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
        found = cached[0] if cached is not None else None
        if found is None:
            future = self._started().schedule(
                parse_source, (stored.source, source), timeout=self.seconds
            )
            try:
                found = future.result()
            except Exception as exc:
                raise self._failure(exc, source) from None
            self._remember(key, found, len(stored.source))
        if isinstance(found, str):
            raise FlowError(found)
        return found

    def _remember(self, key: _Key, loaded: LoadedFlow | str, size: int) -> None:
        with self._lock:
            if key in self._cache:
                return
            self._cache[key] = (loaded, size)
            self._cached_bytes += size
            while self._cached_bytes > CACHE_SOURCE_BYTES and len(self._cache) > 1:
                _, (_, dropped) = self._cache.popitem(last=False)
                self._cached_bytes -= dropped

    def _failure(self, exc: BaseException, source: str) -> BaseException:
        """What a failed parse is told as: ours as they are; a timeout or a dead process as a
        located FlowLoadError; anything else (a bug) as it came."""
        if isinstance(exc, BodyTooLarge | UsageError):
            return exc
        if isinstance(exc, concurrent.futures.TimeoutError | TimeoutError):
            return FlowLoadError(
                f"parsing took longer than {self.seconds:g} s (flowParseSeconds), and was "
                "stopped: send fewer or smaller flows",
                where=source,
            )
        if isinstance(exc, ProcessExpired):
            return FlowLoadError(
                f"the process parsing the flow ended ({exc}); is the flow too large?",
                where=source,
            )
        return exc

"""Ray engine: the local encoder run by a pool of Ray actors through Ray Data, vectors back in input order.

`RayEmbedder` is an `Embedder` with the same name, dimension and fingerprint as
`make_embedder(model, backend)`, so an index built through it is the index a local build makes
and is queried the same way. Texts travel to the actors in *units*: consecutive slices of
`onnx.ENCODE_CHUNK` texts, the pieces the local ONNX encoder tokenises, sorts by length
and batches on its own, so every forward pass sees the batch it sees locally and the vectors are
bit-identical (int8 activation scales are computed per batch, so any other batching would move
them by up to ~0.02). The torch backend sorts its whole input by length, so units change its
batches; its fp32 vectors were bit-identical anyway when the seeds were encoded in slices here
(a one-off check on this CPU, not a guarantee). Only vectors travel back; the index is
built on the driver. Ray is imported only when texts are encoded.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from importlib.util import find_spec
from typing import TYPE_CHECKING, Iterable, Iterator, Sequence

from ..errors import SemsearchError
from . import onnx
from .backends import make_embedder, resolve_backend
from .base import PROGRESS_MIN_TEXTS

if TYPE_CHECKING:
    import numpy as np

INSTALL = "pip install 'semsearch[ray]'"


def available() -> bool:
    """Whether Ray and pyarrow (Ray Data's block format) can be imported, without importing them."""
    return find_spec("ray") is not None and find_spec("pyarrow") is not None


def units(n: int, size: int) -> list[range]:
    """Positions 0..n-1 cut into consecutive slices of `size` (the last one shorter)."""
    return [range(start, min(start + size, n)) for start in range(0, n, size)]


class RayEmbedder:
    """An Embedder that runs `make_embedder(model, backend)` in Ray actors, one model copy per actor.

    Args:
        model: as for make_embedder; a local directory must exist at the same path on every node.
        backend: as for make_embedder; "auto" is resolved here, on the driver, so that every actor
            runs the same backend.
        workers: actors in the pool (None = as many as the cluster has CPUs for).
        address: Ray cluster to join (None = $RAY_ADDRESS, else a new local Ray). When this process
            has already called `ray.init`, that session is used as it is.
        cpus_per_worker: CPUs reserved per actor, and its ONNX threads (threads change speed, not vectors).
        unit_size: texts per unit (None = onnx.ENCODE_CHUNK, which keeps vectors identical to
            the local path; a multiple of it does too).
    Raises:
        SemsearchError: Ray is not installed, a bad worker count, or an unknown backend.
    """

    def __init__(
        self,
        model: str | None = None,
        backend: str = "auto",
        *,
        workers: int | None = None,
        address: str | None = None,
        cpus_per_worker: int = 1,
        unit_size: int | None = None,
    ):
        if not available():
            raise SemsearchError(f"--engine ray needs Ray Data, which is not installed: {INSTALL}")
        if (workers is not None and workers < 1) or cpus_per_worker < 1 or (unit_size is not None and unit_size < 1):
            raise SemsearchError("--workers, CPUs per worker and the unit size must be at least 1")
        self.backend = resolve_backend(model, backend)
        self.local = make_embedder(model, self.backend)
        self.name = self.local.name
        self.workers = workers
        self.address = address
        self.cpus_per_worker = cpus_per_worker
        self.unit_size = unit_size

    @property
    def dim(self) -> int:
        return self.local.dim

    @property
    def fingerprint(self) -> str:
        """The local embedder's: vectors are the same, so is the index's model fingerprint."""
        return self.local.fingerprint

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> "np.ndarray":
        """Texts -> (len(texts), dim) float32, rows of L2 norm 1, in the order given.

        Raises:
            SemsearchError: the cluster cannot be reached, is too small for `workers`, or an actor failed
                (e.g. other model weights on its node).
        """
        import numpy as np

        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        size = self.unit_size or _encode_chunk()
        with _connected(self.address) as ray, _ray_data_quiet():
            workers = _check_workers(ray, self.workers, self.cpus_per_worker)
            dim = self.dim  # on the driver before the actors: an ONNX export is made once, not by each
            tables = _unit_tables(texts, size)
            vectors = ray.data.from_arrow(tables).map_batches(
                EncodeUnits,
                batch_size=None,  # a whole block, i.e. a whole unit, per call
                compute=ray.data.ActorPoolStrategy(size=min(workers, len(tables))),  # no actor without a unit
                num_cpus=self.cpus_per_worker,
                fn_constructor_kwargs={"model": self.name, "backend": self.backend, "fingerprint": self.fingerprint,
                                       "threads": self.cpus_per_worker, "unit_size": size},
            )
            try:
                return _collect(vectors.iter_batches(batch_size=None, batch_format="numpy"), len(texts), dim, progress)
            except ray.exceptions.RayError as exc:
                raise SemsearchError(f"Ray embedding failed: {_root_cause(exc)}") from None

    def __repr__(self) -> str:
        return f"RayEmbedder({self.name!r}, backend={self.backend!r}, workers={self.workers}, address={self.address!r})"


class EncodeUnits:
    """Ray Data callable class: one instance per actor, holding one copy of the local encoder.

    Raises (in the actor, reported by `RayEmbedder.encode`):
        SemsearchError: the model on this node has other weights than the driver's.
    """

    def __init__(self, model: str, backend: str, fingerprint: str, threads: int, unit_size: int):
        self.embedder = make_embedder(model, backend)
        if isinstance(self.embedder, onnx.OnnxEmbedder):
            self.embedder.threads = threads  # torch actors follow OMP_NUM_THREADS, which Ray sets
        if self.embedder.fingerprint != fingerprint:
            import socket

            raise SemsearchError(
                f"the model {model!r} on node {socket.gethostname()} has weights {self.embedder.fingerprint}, the "
                f"driver's {fingerprint}: install the same model on every node"
            )
        self.unit_size = unit_size

    def __call__(self, batch: dict) -> dict:
        """{"pos": (n,) int64, "text": (n,) str} -> {"pos": (n,) int64, "vector": (n, dim) float32}."""
        import numpy as np

        order = np.argsort(batch["pos"], kind="stable")
        pos, texts = batch["pos"][order], batch["text"][order]
        unit = pos // self.unit_size
        out = np.empty((len(pos), self.embedder.dim), dtype=np.float32)
        for u in np.unique(unit):  # one unit per block; grouping keeps units whole if Ray merges blocks
            rows = np.flatnonzero(unit == u)
            out[rows] = self.embedder.encode([str(t) for t in texts[rows]])
        return {"pos": pos, "vector": out}


def _encode_chunk() -> int:
    return onnx.ENCODE_CHUNK


def _unit_tables(texts: Sequence[str], size: int) -> list:
    """One Arrow table (pos, text) per unit: Ray Data makes one block of each."""
    import pyarrow as pa

    return [
        pa.table({"pos": pa.array(r, pa.int64()), "text": pa.array([texts[i] for i in r], pa.string())})
        for r in units(len(texts), size)
    ]


def _collect(batches: Iterable[dict], n: int, dim: int, progress: bool) -> "np.ndarray":
    """Scatter {"pos", "vector"} batches into an (n, dim) array; every position must come back once."""
    import numpy as np

    out = np.empty((n, dim), dtype=np.float32)
    seen = np.zeros(n, dtype=bool)
    from ..progress import bar as progress_bar

    bar = progress_bar(n, "embedding (ray)", show=progress and n > PROGRESS_MIN_TEXTS)
    for batch in batches:
        out[batch["pos"]] = batch["vector"]
        seen[batch["pos"]] = True
        bar.update(len(batch["pos"]))
    bar.close()
    if not seen.all():
        raise SemsearchError(f"Ray returned vectors for {int(seen.sum())} of {n} texts: run the build again")
    return out


def _check_workers(ray, workers: int | None, cpus_per_worker: int) -> int:
    """The pool size: `workers`, or all the cluster's CPUs; refused when the cluster cannot host it
    (a pool waiting for CPUs that never come would hang the build)."""
    cpus = int(ray.cluster_resources().get("CPU", 0))
    wanted = workers or max(1, cpus // cpus_per_worker)
    if wanted * cpus_per_worker > cpus:
        raise SemsearchError(
            f"--workers {wanted} needs {wanted * cpus_per_worker} CPUs and the Ray cluster has {cpus}: "
            f"lower --workers or add nodes"
        )
    return wanted


@contextmanager
def _connected(address: str | None) -> Iterator:
    """The `ray` module, connected: to this process's Ray session if there is one (left running),
    else to `address` / $RAY_ADDRESS, else to a new local Ray (shut down on exit)."""
    import ray

    if ray.is_initialized():
        yield ray
        return
    target = address or os.environ.get("RAY_ADDRESS") or "local"
    local = {"include_dashboard": False} if target == "local" else {}
    try:
        _check_reachable(target)
        # Worker output would reach this process's stdout, where --json writes: keep it in Ray's logs.
        ray.init(target, log_to_driver=False, **local)
    except (OSError, RuntimeError, ValueError) as exc:  # ConnectionError is an OSError
        raise SemsearchError(
            f"cannot reach a Ray cluster at {target}: {str(exc).splitlines()[0]}. "
            f"Start one with `ray start --head`, or drop --ray-address and unset RAY_ADDRESS for a local Ray"
        ) from None
    try:
        yield ray
    finally:
        ray.shutdown()


def _check_reachable(target: str) -> None:
    """Raise OSError when a HOST:PORT address refuses TCP now: ray.init would retry it for minutes."""
    import socket

    host, _, port = target.removeprefix("ray://").rpartition(":")
    if host and port.isdigit():
        socket.create_connection((host, int(port)), timeout=5).close()


@contextmanager
def _ray_data_quiet() -> Iterator[None]:
    """Ray Data's progress bars (and its warning that they are off) silenced while we run: encode
    shows one bar of its own, like the local path, and nothing at all under --json."""
    import logging

    from ray.data import DataContext

    ctx = DataContext.get_current()
    notice = logging.getLogger("ray.data._internal.progress")
    before = ctx.enable_progress_bars, notice.level
    ctx.enable_progress_bars = False
    notice.setLevel(logging.ERROR)
    try:
        yield
    finally:
        ctx.enable_progress_bars = before[0]
        notice.setLevel(before[1])


def _root_cause(exc: BaseException) -> str:
    """The innermost message of a Ray error (an actor's own exception), on one line."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException) and cause is not exc:
        return _root_cause(cause)
    import re

    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    last = lines[-1] if lines else type(exc).__name__
    return re.sub(r"^[\w.]+(Error|Exception): ", "", last)  # "semsearch.errors.SemsearchError: msg" -> "msg"

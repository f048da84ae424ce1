"""ONNX backend: a model's transformer exported once to ONNX, then run with onnxruntime + tokenizers, no torch.

Query time needs only `tokenizers`, `onnxruntime` and numpy (imported in a fraction of a second,
where `import sentence_transformers` takes seconds). Export happens once per weights
fingerprint and needs torch + transformers (+ `onnx` for the int8 file); the files are cached in
`$SEMSEARCH_CACHE_DIR/onnx/<weights fingerprint>/` (default `~/.cache/semsearch/onnx/...`):

| file | content |
|---|---|
| `model.onnx` | the transformer, fp32: input_ids, attention_mask (, token_type_ids) -> last_hidden_state |
| `model_int8.onnx` | the same with int8 weights (onnxruntime dynamic quantization) |
| `model.basic.onnx`, `model_int8.basic.onnx` | either with basic graph optimisations applied, saved by the first query (loads faster) |
| `tokenizer.json` | the model's tokenizer |
| `onnx_config.json` | what encoding needs besides: max_seq_length, pooling, dim, inputs; export facts |

Every file is written to a temporary name and renamed into place, so a crash never leaves a
half file. fp32 vectors match sentence-transformers (cosine >= 0.999) and share its fingerprint;
int8 vectors differ slightly, so their fingerprint is `<weights fingerprint>-onnx-int8`.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from ..errors import SemsearchError
from .base import PROGRESS_MIN_TEXTS, cache_dir, file_fingerprint, resolve_model

if TYPE_CHECKING:
    import numpy as np

#: ONNX opset of the export (LayerNormalization is a single op from 17 on).
OPSET = 17
#: Suffix of the fingerprint of int8 vectors: an index built with them must be queried with them.
INT8_SUFFIX = "-onnx-int8"
FP32_FILE, INT8_FILE = "model.onnx", "model_int8.onnx"
#: A model file's copy with basic graph optimisations applied, for query sessions (`_query_session`).
BASIC_SUFFIX = ".basic.onnx"
TOKENIZER_FILE, CONFIG_FILE = "tokenizer.json", "onnx_config.json"
#: The int8 recipe (benchmarks/encode_speed.py): dynamic quantization, signed int8 weights per
#: output channel, of the MatMuls and the embedding tables (Gather). Per-tensor scales lost ~0.06
#: cosine; unsigned weights were ~1.4x slower; leaving Gather in fp32 changed nothing measurable
#: but kept the file at 59 MB instead of 23 MB. A new recipe makes new vectors: then version INT8_SUFFIX.
INT8_WEIGHT_TYPE = "QInt8"
INT8_PER_CHANNEL = True
INT8_OPS = ("MatMul", "Gather")
#: Cores: one for a few texts (a query), BATCH_THREADS batches at once for more (a build).
FEW_TEXTS, BATCH_THREADS = 8, 2
#: Texts tokenised at a time by `OnnxEmbedder.encode` (bounds memory on large corpora).
ENCODE_CHUNK = 2048
_POOLING = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls", "pooling_mode_max_tokens": "max"}


def onnx_cache_root() -> Path:
    """`cache_dir()/onnx`: `$SEMSEARCH_CACHE_DIR/onnx`, else `$XDG_CACHE_HOME/semsearch/onnx`, else `~/.cache/semsearch/onnx`."""
    return cache_dir() / "onnx"


def model_folder(model: str | None) -> tuple[str, Path]:
    """(name recorded in an index, local model directory); the ONNX backend needs a local directory.

    Raises:
        SemsearchError: the model is a hub name with no local directory.
    """
    name, target = resolve_model(model)
    if not Path(target).is_dir():
        raise SemsearchError(
            f"the ONNX backend needs a local model directory, not {name!r}: give --model DIR "
            f"(a sentence-transformers folder) or use --backend torch"
        )
    return name, Path(target)


def weights_fingerprint(folder: Path) -> str:
    """`file_fingerprint` of a model folder; raises SemsearchError when it has no weight file."""
    fp = file_fingerprint(Path(folder))
    if fp is None:
        raise SemsearchError(f"{folder}: no model.safetensors or pytorch_model.bin to fingerprint and export")
    return fp


def read_model_config(folder: Path) -> dict:
    """What encoding needs from a sentence-transformers folder: transformer dir, max_seq_length, pooling.

    Raises:
        SemsearchError: modules the backend cannot run (Dense layers, other pooling modes).
    """
    folder = Path(folder)

    def load(path: Path) -> dict:
        try:
            return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        except (OSError, ValueError) as exc:
            raise SemsearchError(f"{path}: unreadable ({exc})") from None

    modules = load(folder / "modules.json") or []
    kinds = {m.get("type", "").rsplit(".", 1)[-1]: m for m in modules if isinstance(m, dict)}
    unsupported = [k for k in kinds if k not in ("Transformer", "Pooling", "Normalize")]
    if unsupported:
        raise SemsearchError(
            f"{folder}: the ONNX backend runs Transformer + Pooling + Normalize models; this one also has "
            f"{', '.join(unsupported)}: use --backend torch"
        )
    transformer = folder / kinds.get("Transformer", {}).get("path", "")
    st_config = load(transformer / "sentence_bert_config.json") or load(folder / "sentence_bert_config.json")
    hf_config = load(transformer / "config.json")
    pooling_cfg = load(folder / kinds["Pooling"]["path"] / "config.json") if "Pooling" in kinds else {}
    if isinstance(pooling_cfg.get("pooling_mode"), str):
        modes = [pooling_cfg["pooling_mode"]]
    else:
        modes = [k for k, v in pooling_cfg.items() if k.startswith("pooling_mode_") and v]
    modes = [_POOLING.get(m, m) for m in modes]
    if len(modes) > 1 or any(m not in _POOLING.values() for m in modes):
        raise SemsearchError(f"{folder}: pooling {pooling_cfg} is not supported by the ONNX backend: use --backend torch")
    if not (transformer / TOKENIZER_FILE).is_file():
        raise SemsearchError(f"{transformer}: no {TOKENIZER_FILE} (a fast tokenizer) for the ONNX backend: use --backend torch")
    max_len = st_config.get("max_seq_length") or min(hf_config.get("max_position_embeddings", 512), 512)
    return {
        "transformer_dir": str(transformer),
        "max_seq_length": int(max_len),
        "do_lower_case": bool(st_config.get("do_lower_case", False)),
        "pooling": modes[0] if modes else "mean",
        "normalize": True,  # the Embedder contract: rows of L2 norm 1
    }


def _atomic_write(target: Path, write) -> None:
    """Call `write(temp_path)`, then rename the temporary file onto `target` (never a half file)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a cache file is as readable as any other
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_json(target: Path, obj: dict) -> None:
    _atomic_write(target, lambda p: p.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8"))


def _pool(hidden: "np.ndarray", mask: "np.ndarray", pooling: str) -> "np.ndarray":
    """(batch, seq, dim) hidden states + (batch, seq) mask -> (batch, dim) L2-normalised float32."""
    import numpy as np

    hidden = hidden.astype(np.float32, copy=False)
    m = mask[:, :, None].astype(np.float32)
    if pooling == "cls":
        pooled = hidden[:, 0]
    elif pooling == "max":
        pooled = np.where(m > 0, hidden, -1e9).max(axis=1)
    else:  # mean over real tokens, as sentence-transformers (count clamped at 1e-9)
        pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
    norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
    return (pooled / norms).astype(np.float32)


def _load_tokenizer(path: Path, max_len: int):
    from tokenizers import Tokenizer

    try:
        tok = Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises a bare Exception on a damaged file
        raise SemsearchError(f"cannot read tokenizer {path}: {exc}. Delete {path.parent} to re-export it") from None
    # tokenizer.json may carry its own (different) truncation and fixed padding: the model's rule wins.
    tok.no_padding()
    tok.enable_truncation(max_length=max_len)
    return tok


def _export_fp32(folder: Path, out_dir: Path, config: dict) -> dict:
    """Trace the transformer to out_dir/model.onnx, verify it against torch; returns export facts."""
    import inspect
    import warnings

    start = time.perf_counter()
    try:
        import torch
        from transformers import AutoModel
        from transformers.utils import logging as hf_logging
    except ImportError as exc:
        raise SemsearchError(f"exporting to ONNX needs torch and transformers ({exc}): install semsearch, then retry") from None
    import numpy as np

    hf_logging.disable_progress_bar()
    try:
        model = AutoModel.from_pretrained(config["transformer_dir"], attn_implementation="eager").eval()
    except Exception as exc:  # transformers raises many kinds on a bad folder
        raise SemsearchError(f"cannot load {config['transformer_dir']} for ONNX export: {exc}") from None
    params = inspect.signature(model.forward).parameters
    inputs = ["input_ids", "attention_mask"] + (["token_type_ids"] if "token_type_ids" in params else [])

    class LastHiddenState(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
            return self.inner(input_ids=input_ids, attention_mask=attention_mask, **extra).last_hidden_state

    tok = _load_tokenizer(_tokenizer_path(config), config["max_seq_length"])

    def batch(texts: Sequence[str]) -> dict[str, np.ndarray]:
        encs = tok.encode_batch(list(texts))
        width = max(len(e.ids) for e in encs)
        ids = np.zeros((len(encs), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for i, e in enumerate(encs):
            ids[i, : len(e.ids)], mask[i, : len(e.ids)] = e.ids, 1
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}

    sample = batch(["a short text", "a longer text about sharding embedding tables across many devices"])
    args = tuple(torch.from_numpy(sample[name]) for name in inputs)
    axes = {name: {0: "batch", 1: "sequence"} for name in inputs + ["last_hidden_state"]}
    wrapped = LastHiddenState(model).eval()
    exporter = "torchscript (dynamo=False)"

    # Checked on a batch of another shape than the traced one (catches shapes frozen by tracing),
    # before the file takes its name.
    check = batch(["sharding", "quantization of large language model weights to int8", "video"])
    with torch.no_grad():
        ref = model(**{k: torch.from_numpy(check[k]) for k in inputs}).last_hidden_state.numpy()
    cos = np.zeros(0)

    def verify(path: Path) -> None:
        nonlocal cos
        got = _session(path, 1, light=True).run(None, {k: check[k] for k in inputs})[0]
        mask, pooling = check["attention_mask"], config["pooling"]
        cos = (_pool(ref, mask, pooling) * _pool(got, mask, pooling)).sum(axis=1)
        if cos.min() < 0.9999:
            raise SemsearchError(
                f"ONNX export of {folder} does not reproduce the model (cosine {cos.min():.4f}): use --backend torch"
            )

    def export(path: Path) -> None:
        nonlocal exporter
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer and deprecation chatter; the result is verified
            try:
                torch.onnx.export(
                    wrapped, args, str(path), input_names=inputs, output_names=["last_hidden_state"],
                    dynamic_axes=axes, opset_version=OPSET, do_constant_folding=True, dynamo=False,
                )
            except Exception as legacy:  # a torch without the TorchScript exporter: torch.export's (needs onnxscript)
                exporter = "dynamo"
                try:
                    dims = {0: torch.export.Dim("batch"), 1: torch.export.Dim("sequence", max=4096)}
                    torch.onnx.export(
                        wrapped, args, input_names=inputs, output_names=["last_hidden_state"], opset_version=OPSET,
                        dynamic_shapes={name: dims for name in inputs}, dynamo=True, external_data=False,
                        verbose=False,
                    ).save(str(path))
                except Exception as exc:
                    raise SemsearchError(
                        f"ONNX export of {folder} failed (TorchScript exporter: {legacy}; dynamo exporter: {exc}): "
                        f"use --backend torch"
                    ) from None
        verify(path)

    _atomic_write(out_dir / FP32_FILE, export)
    return {
        "inputs": inputs,
        "dim": int(ref.shape[-1]),
        "opset": OPSET,
        "exporter": exporter,
        "torch_version": torch.__version__,
        "export_seconds": round(time.perf_counter() - start, 1),
        "export_check_min_cosine": float(cos.min()),
    }


def _tokenizer_path(config: dict) -> Path:
    return Path(config["transformer_dir"]) / TOKENIZER_FILE


def _int8_recipe() -> dict:
    return {"weight_type": INT8_WEIGHT_TYPE, "per_channel": INT8_PER_CHANNEL, "ops": list(INT8_OPS)}


def _quantize(out_dir: Path) -> dict:
    """out_dir/model.onnx -> out_dir/model_int8.onnx: dynamic quantization, int8 weights."""
    import warnings

    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise SemsearchError(f"int8 quantization needs onnxruntime and onnx ({exc}): pip install onnxruntime onnx") from None
    source = out_dir / FP32_FILE
    start = time.perf_counter()

    def write(path: Path) -> None:
        with warnings.catch_warnings(), _quiet_root_logger():
            warnings.simplefilter("ignore")
            try:
                quantize_dynamic(
                    str(source), str(path), weight_type=getattr(QuantType, INT8_WEIGHT_TYPE),
                    per_channel=INT8_PER_CHANNEL, op_types_to_quantize=list(INT8_OPS),
                )
            except Exception as exc:  # onnx raises DecodeError & co. on a damaged file
                raise SemsearchError(f"cannot quantize {source}: {exc}. Delete {out_dir} to re-export it") from None

    _atomic_write(out_dir / INT8_FILE, write)
    return {"int8": {**_int8_recipe(), "quantize_seconds": round(time.perf_counter() - start, 1)}}


@contextmanager
def _quiet_root_logger():
    """onnxruntime.quantization warns on the root logger (which would configure it): swallow that."""
    import logging

    root = logging.getLogger()
    handler, drop = logging.NullHandler(), logging.Filter("no record has this logger name")
    root.addHandler(handler)  # a root with a handler is not basicConfig'ed by logging.warning
    root.addFilter(drop)
    try:
        yield
    finally:
        root.removeFilter(drop)
        root.removeHandler(handler)


def export_onnx(model_dir: str | Path, out_dir: str | Path, quantize: bool = False) -> Path:
    """Export a sentence-transformers folder to out_dir (model.onnx, tokenizer.json, onnx_config.json).

    Needs torch + transformers (imported here only). With `quantize`, also writes model_int8.onnx.
    Overwrites what is there; `ensure_onnx` is the cached version.

    Returns:
        the path of model_int8.onnx when `quantize`, else of model.onnx.
    Raises:
        SemsearchError: an unsupported model, a failed export or an export that does not
            reproduce the model's vectors.
    """
    folder, out = Path(model_dir), Path(out_dir)
    config = read_model_config(folder)
    out.mkdir(parents=True, exist_ok=True)
    facts = _export_fp32(folder, out, config)
    meta = {
        **{k: v for k, v in config.items() if k != "transformer_dir"},
        **facts,
        "source": str(folder.resolve()),
        "weights_fingerprint": weights_fingerprint(folder),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    _atomic_write(out / TOKENIZER_FILE, lambda p: p.write_bytes(_tokenizer_path(config).read_bytes()))
    if quantize:
        meta.update(_quantize(out))
    else:  # an int8 file beside a new fp32 one was made from the old one
        (out / INT8_FILE).unlink(missing_ok=True)
    _write_json(out / CONFIG_FILE, meta)  # last: its presence says the folder is complete
    return out / (INT8_FILE if quantize else FP32_FILE)


def ensure_onnx(model_dir: str | Path, quantize: bool = False, cache_dir: str | Path | None = None) -> Path:
    """The cached export folder of a model folder, exporting (or quantizing) only what is missing.

    Args:
        model_dir: a sentence-transformers folder with model.safetensors (or pytorch_model.bin).
        quantize: also make sure model_int8.onnx exists.
        cache_dir: root of the cache (default `onnx_cache_root()`); the folder is `<root>/<fingerprint>`.
    Returns:
        the folder holding model.onnx (and model_int8.onnx), tokenizer.json, onnx_config.json.
    """
    folder = Path(model_dir)
    out = Path(cache_dir or onnx_cache_root()) / weights_fingerprint(folder)
    if not ((out / CONFIG_FILE).is_file() and (out / FP32_FILE).is_file()):
        export_onnx(folder, out, quantize)
    elif quantize:
        meta = _read_config(out)
        recipe = {k: v for k, v in meta.get("int8", {}).items() if k != "quantize_seconds"}
        if not (out / INT8_FILE).is_file() or recipe != _int8_recipe():
            meta.update(_quantize(out))
            _write_json(out / CONFIG_FILE, meta)
    return out


def _read_config(out: Path) -> dict:
    path = out / CONFIG_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SemsearchError(f"cannot read {path}: {exc}. Delete {out} to re-export it") from None


def _session(path: Path, threads: int, light: bool = False, *, optimized: bool = False, save_to: Path | None = None):
    """An onnxruntime session of `path`.

    Args:
        light: graph optimisation "basic" only (a query session, see below), else all.
        optimized: `path` was saved already optimised (`save_to`): optimise nothing.
        save_to: also write the optimised graph there (renamed into place; skipped if unwritable).
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3  # errors only: graph-optimisation notices are noise
    if optimized:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    elif light:
        # A query session: full graph optimisation costs ~70 ms of a ~0.5 s cold query and gains
        # nothing on a handful of short texts; basic (constant folding, redundant nodes) stays.
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    tmp = None
    if save_to is not None:
        tmp = save_to.with_name(f".{save_to.name}.{os.getpid()}.tmp")
        opts.optimized_model_filepath = str(tmp)
    try:
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf on damaged files
        if tmp is not None:
            tmp.unlink(missing_ok=True)
            return _session(path, threads, light)  # perhaps only the copy could not be written
        raise SemsearchError(
            f"cannot load ONNX model {path}: {str(exc).splitlines()[0][:200]}. Delete {path.parent} to re-export it"
        ) from None
    if tmp is not None:
        try:
            os.replace(tmp, save_to)
        except OSError:
            tmp.unlink(missing_ok=True)
    return session


def _query_session(path: Path, threads: int):
    """`_session(path, threads, light=True)`, from the basic-optimised copy saved beside `path`
    (`<name>.basic.onnx`, made on first use): same graph, same vectors, and ~13 ms less of a ~0.3 s
    cold query, since loading it optimises nothing (docs/benchmarks.md, "Cold query")."""
    saved = path.with_name(path.stem + BASIC_SUFFIX)
    try:
        if saved.stat().st_mtime_ns >= path.stat().st_mtime_ns:  # else made from an older `path`
            return _session(saved, threads, optimized=True)
    except (OSError, SemsearchError):
        pass  # none yet, or damaged: made again
    return _session(path, threads, light=True, save_to=saved)


def available() -> bool:
    """Whether onnxruntime and tokenizers can be imported (without importing them)."""
    from importlib.util import find_spec

    return find_spec("onnxruntime") is not None and find_spec("tokenizers") is not None


def can_export(model_dir: str | Path, cache_dir: str | Path | None = None) -> bool:
    """Whether the fp32 export of a model folder is cached, or can be made (torch, supported modules)."""
    from importlib.util import find_spec

    folder = Path(model_dir)
    out = Path(cache_dir or onnx_cache_root()) / weights_fingerprint(folder)
    if (out / CONFIG_FILE).is_file() and (out / FP32_FILE).is_file():
        return True
    try:
        read_model_config(folder)
    except SemsearchError:
        return False
    return find_spec("torch") is not None and find_spec("transformers") is not None


def _run_batches(sessions: list, batches: list, encodings: list, lengths: "np.ndarray", inputs: list[str], config: dict):
    """Each batch's (len(batch), dim) vectors, in order; with several sessions, batches run side by
    side, one per session (onnxruntime releases the GIL while it runs)."""
    import numpy as np

    def run(rows: "np.ndarray", session) -> "np.ndarray":
        width = int(lengths[rows].max())
        ids = np.zeros((len(rows), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for i, r in enumerate(rows):
            ids[i, : lengths[r]] = encodings[r].ids
            mask[i, : lengths[r]] = 1
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = session.run(None, {k: feed[k] for k in inputs})[0]
        return _pool(hidden, mask, config["pooling"])

    if len(sessions) == 1 or len(batches) == 1:
        yield from (run(rows, sessions[0]) for rows in batches)
        return
    from concurrent.futures import ThreadPoolExecutor
    from queue import SimpleQueue

    free: SimpleQueue = SimpleQueue()
    for session in sessions:
        free.put(session)

    def job(rows: "np.ndarray") -> "np.ndarray":
        session = free.get()
        try:
            return run(rows, session)
        finally:
            free.put(session)

    with ThreadPoolExecutor(len(sessions), thread_name_prefix="semsearch-onnx") as pool:
        yield from pool.map(job, batches)


class OnnxEmbedder:
    """An Embedder running the model's ONNX export with onnxruntime; never imports torch to encode.

    The export is made on first use when missing (needs torch once) and cached.

    Args:
        model: sentence-transformers model directory; None = the bundled default.
        quantized: use int8 weights (faster, slightly different vectors: fingerprint `…-onnx-int8`).
        threads: cores to use: for up to 8 texts (a query) one session's threads, else batches run
            at once (one single-threaded session each); None = 1 for up to 8 texts, else BATCH_THREADS.
        batch_size: texts per forward pass (texts are sorted by length first, so padding is small).
        cache_dir: root of the export cache (default `onnx_cache_root()`).
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        quantized: bool = False,
        threads: int | None = None,
        batch_size: int = 32,
        cache_dir: str | Path | None = None,
    ):
        if not available():
            raise SemsearchError("the ONNX backend needs onnxruntime and tokenizers: pip install onnxruntime tokenizers")
        self.name, self._folder = model_folder(model)
        self.quantized = quantized
        self.threads = threads
        self.batch_size = batch_size
        self.cache_dir = cache_dir
        self._dir: Path | None = None
        self._config: dict | None = None
        self._tokenizer = None
        self._sessions: dict[tuple[int, bool], object] = {}

    @property
    def fingerprint(self) -> str:
        """The weights fingerprint (as SentenceTransformerEmbedder), plus `-onnx-int8` when quantized."""
        fp = weights_fingerprint(self._folder)
        return fp + INT8_SUFFIX if self.quantized else fp

    @property
    def path(self) -> Path:
        """The ONNX file this embedder runs (exported on first access when missing)."""
        return self._export_dir() / (INT8_FILE if self.quantized else FP32_FILE)

    def _export_dir(self) -> Path:
        if self._dir is None:
            self._dir = ensure_onnx(self._folder, self.quantized, self.cache_dir)
            self._config = _read_config(self._dir)
        return self._dir

    @property
    def config(self) -> dict:
        self._export_dir()
        return self._config  # type: ignore[return-value]

    @property
    def dim(self) -> int:
        return int(self.config["dim"])

    def _load(self, n_texts: int):
        """Tokenizer and sessions for encoding `n_texts` texts at once.

        A few texts (a query) get one light session: graph optimisation "basic", `threads` or one
        thread. More get `threads` or BATCH_THREADS sessions of one thread each, fully optimised,
        that run whole batches side by side: batches in parallel scale with cores where one
        session's threads wait for each other at every operator (worst on a busy machine;
        docs/benchmarks.md, "Build speed"). The choice is made per ENCODE_CHUNK, never per call,
        so encoding a list gives the same vectors as encoding each ENCODE_CHUNK slice of it alone
        (what `--engine ray` relies on); threads change speed, not vectors, while the optimisation
        level changes int8 vectors (up to ~0.015 per component).
        """
        if self._tokenizer is None:
            self._tokenizer = _load_tokenizer(self._export_dir() / TOKENIZER_FILE, self.config["max_seq_length"])
        light = n_texts <= FEW_TEXTS
        if light:
            threads = self.threads or 1
            if (threads, light) not in self._sessions:
                self._sessions[threads, light] = [_query_session(self.path, threads)]
        else:
            threads = self.threads or min(BATCH_THREADS, os.cpu_count() or 1)
            if (threads, light) not in self._sessions:
                self._sessions[threads, light] = [_session(self.path, 1) for _ in range(threads)]
        return self._tokenizer, self._sessions[threads, light]

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> "np.ndarray":
        """Texts -> (len(texts), dim) float32, rows of L2 norm 1, in the order given."""
        import numpy as np

        texts = [t.lower() for t in texts] if self.config["do_lower_case"] else list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        inputs = self.config["inputs"]
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        bar = None
        if progress and len(texts) > PROGRESS_MIN_TEXTS:
            from tqdm import tqdm

            bar = tqdm(total=len(texts), desc="embedding", unit="text", file=sys.stderr)
        # Tokenise a chunk at a time: tokenizers' Encoding objects cost ~100 bytes a token, so a
        # whole large corpus at once would take gigabytes.
        for chunk in range(0, len(texts), ENCODE_CHUNK):
            part = texts[chunk : chunk + ENCODE_CHUNK]
            tok, sessions = self._load(len(part))
            encodings = tok.encode_batch(part)
            lengths = np.array([len(e.ids) for e in encodings])
            order = np.argsort(-lengths, kind="stable")  # similar lengths together: little padding
            batches = [order[start : start + self.batch_size] for start in range(0, len(encodings), self.batch_size)]
            for rows, vectors in zip(batches, _run_batches(sessions, batches, encodings, lengths, inputs, self.config)):
                out[chunk + rows] = vectors
                if bar is not None:
                    bar.update(len(rows))
        if bar is not None:
            bar.close()
        return out

    def __repr__(self) -> str:
        return f"OnnxEmbedder({self.name!r}, quantized={self.quantized})"

"""Evaluate: a judged dataset in BEIR layout -> nDCG@10, Recall@100, MRR@10 of an index's rankings.

Metric definitions follow trec_eval / pytrec_eval as BEIR reports them: graded gains equal to
the judgment, log2 discount, the ideal ranking built from every judged-relevant document;
only queries with at least one relevant judgment count.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

from .errors import CorpusError
from .ingest import RawRecord, clean_text
from .progress import bar as progress_bar


@dataclass
class BeirDataset:
    """Documents as raw records (id = BEIR `_id`), query texts and relevance judgments."""

    records: list[RawRecord]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def _jsonl(path: Path) -> list[tuple[int, dict]]:
    if not path.is_file():
        raise CorpusError(str(path), "missing (a BEIR directory has corpus.jsonl, queries.jsonl, qrels/<split>.tsv)")
    rows = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise CorpusError(str(path), f"invalid JSON ({exc.msg})", n) from None
            if not isinstance(obj, dict) or "_id" not in obj:
                raise CorpusError(str(path), "each line must be an object with '_id'", n)
            rows.append((n, obj))
    return rows


def load_beir(directory: str | Path, split: str = "test") -> BeirDataset:
    """Read a BEIR directory; raises CorpusError naming the file and line of any problem."""
    d = Path(directory)
    records = []
    for n, obj in _jsonl(d / "corpus.jsonl"):
        text = clean_text(str(obj.get("text") or ""))
        if not text:
            raise CorpusError(str(d / "corpus.jsonl"), "field 'text' is missing or empty", n)
        title = clean_text(str(obj.get("title") or "")) or None
        records.append(RawRecord(text, str(d / "corpus.jsonl"), n, title=title, id=str(obj["_id"])))
    queries = {str(o["_id"]): str(o.get("text") or "") for _, o in _jsonl(d / "queries.jsonl")}
    qrels_path = d / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        raise CorpusError(str(qrels_path), f"missing: no judgments for split {split!r}")
    qrels: dict[str, dict[str, int]] = {}
    with qrels_path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            cells = line.rstrip("\n").split("\t")
            if n == 1 and cells[0] == "query-id":
                continue
            if not line.strip():
                continue
            if len(cells) != 3 or not cells[2].strip().lstrip("-").isdigit():
                raise CorpusError(str(qrels_path), "expected 'query-id<TAB>corpus-id<TAB>score'", n)
            qrels.setdefault(cells[0], {})[cells[1]] = int(cells[2])
    missing = [q for q in qrels if q not in queries]
    if missing:
        raise CorpusError(str(d / "queries.jsonl"), f"no text for judged query {missing[0]!r}")
    return BeirDataset(records, queries, qrels)


def ndcg(ranked: Sequence[str], judged: Mapping[str, int], k: int = 10) -> float:
    """nDCG@k with linear gains (the judgment) and log2 discounts."""
    dcg = sum(judged.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(ranked[:k]) if judged.get(doc, 0) > 0)
    ideal = sorted((g for g in judged.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall(ranked: Sequence[str], judged: Mapping[str, int], k: int = 100) -> float:
    relevant = {d for d, g in judged.items() if g > 0}
    return len(relevant & set(ranked[:k])) / len(relevant) if relevant else 0.0


def mrr(ranked: Sequence[str], judged: Mapping[str, int], k: int = 10) -> float:
    for i, doc in enumerate(ranked[:k]):
        if judged.get(doc, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def score_run(run: Mapping[str, Sequence[str]], qrels: Mapping[str, Mapping[str, int]]) -> dict:
    """Mean metrics over judged queries with a relevant document; a query missing from `run` scores 0."""
    judged = [q for q, j in qrels.items() if any(g > 0 for g in j.values())]
    n = len(judged) or 1
    return {
        "ndcg@10": sum(ndcg(run.get(q, []), qrels[q], 10) for q in judged) / n,
        "recall@100": sum(recall(run.get(q, []), qrels[q], 100) for q in judged) / n,
        "mrr@10": sum(mrr(run.get(q, []), qrels[q], 10) for q in judged) / n,
        "queries": len(judged),
    }


def run_queries(
    search: Callable[[Sequence[str], int], list[list[str]]], queries: Mapping[str, str], k: int = 100, batch: int = 64
) -> dict[str, list[str]]:
    """{query id: ranked document ids} using `search(texts, k) -> ids per text` in batches."""
    ids = list(queries)
    run: dict[str, list[str]] = {}
    for i in range(0, len(ids), batch):
        chunk = ids[i : i + batch]
        for qid, ranked in zip(chunk, search([queries[q] for q in chunk], k)):
            run[qid] = ranked
    return run


def evaluate(
    directory: str | Path,
    *,
    index: str | Path | None = None,
    mode: str | None = None,
    split: str = "test",
    model: str | None = None,
    progress: bool = False,
    batch: int = 64,
) -> dict:
    """nDCG@10, Recall@100 and MRR@10 of an index's rankings on a BEIR-layout dataset.

    Args:
        directory: holds corpus.jsonl, queries.jsonl and qrels/<split>.tsv.
        index: an index of that corpus whose paper ids are the BEIR `_id`s; default: build a
            temporary one (no merging, so judged ids survive).
        mode: search mode (default the search default).
    Returns:
        {"ndcg@10", "recall@100", "mrr@10", "queries", "mode", "split", "index", "seconds"}.
    Raises:
        CorpusError: a missing file or malformed line (named).
    """
    import tempfile
    import time

    from .builder import build_records
    from .query import DEFAULT_MODE, Index

    start = time.perf_counter()
    data = load_beir(directory, split)
    queries = {q: data.queries[q] for q in data.qrels}
    with tempfile.TemporaryDirectory(prefix="semsearch-eval-") as tmp:
        path = Path(index) if index is not None else Path(tmp) / "index"
        if index is None:
            build_records(data.records, path, model=model, dedupe=False, progress=progress)
        with Index.open(path, model=model if index is not None else None) as idx:
            bar = progress_bar(len(queries), "queries", show=progress, unit="q")

            def search(texts: Sequence[str], k: int) -> list[list[str]]:
                found = [[h.id for h in hits] for hits in idx.search_batch(texts, k, mode=mode)]
                bar.update(len(texts))
                return found

            run = run_queries(search, queries, 100, batch)
            bar.close()
    metrics = score_run(run, data.qrels)
    metrics.update(
        mode=mode or DEFAULT_MODE,
        split=split,
        index=str(index) if index is not None else "temporary",
        seconds=round(time.perf_counter() - start, 1),
    )
    return metrics

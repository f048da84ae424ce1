"""Benchmarks are programs, not tests: here they only have to run on a tiny input."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from .conftest import ROOT

SAMPLE = ROOT / "tests" / "data" / "arxiv_sample.jsonl"  # 48 real arXiv papers (CC0), 6 categories


def run(script: str, *args) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "SEMSEARCH_CACHE": "off"}
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *map(str, args)],
                         capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_themes_benchmark(tmp_path):
    import gzip

    lines = SAMPLE.read_text(encoding="utf-8").splitlines(keepends=True)
    with gzip.open(tmp_path / "abstracts.jsonl.gz", "wt", encoding="utf-8") as f:
        f.writelines(lines)
    (tmp_path / "clustering_subset.jsonl").write_text("".join(lines[:6]), encoding="utf-8")
    sets = {"per_theme": 8, "sets": {"tiny": {"galaxies": "astro-ph.GA", "robotics": "cs.RO", "cryptography": "cs.CR"}}}
    (tmp_path / "sets.json").write_text(json.dumps(sets), encoding="utf-8")
    out = run("themes.py", "--data", tmp_path, "--sets", tmp_path / "sets.json", "--embedder", "fake")
    assert "== tiny:" in out and "NamedThemes defaults (semsearch)" in out and "previous:" in out


def test_retrieval_benchmark(tmp_path):
    beir = tmp_path / "scifact"
    (beir / "qrels").mkdir(parents=True)
    papers = [json.loads(line) for line in SAMPLE.read_text().splitlines()]
    (beir / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": p["id"], "title": p["title"], "text": p["abstract"]}) + "\n" for p in papers))
    (beir / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": f"q{i}", "text": p["title"]}) + "\n" for i, p in enumerate(papers[:10])))
    (beir / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\t{p['id']}\t1\n" for i, p in enumerate(papers[:10])))
    out = run("retrieval.py", "--data", tmp_path, "--sets", "scifact,seeds", "--embedder", "fake", "--work", tmp_path / "w")
    assert "SciFact: 48 papers, 10 queries" in out and "(semsearch hybrid)" in out and "score calibration" in out


def test_recommend_benchmark(tmp_path):
    from semsearch import build

    from .conftest import FakeEmbedder

    build([SAMPLE], tmp_path / "idx", embedder=FakeEmbedder(), dedupe=False)
    out = run("recommend.py", "--index", tmp_path / "idx", "--min", "6", "--max", "40", "--trials", "1")
    assert "SVM C=0.1 unlike weight 1.0" in out


def test_scale_benchmark(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1200, 16)).astype(np.float32)
    np.save(tmp_path / "v.npy", x / np.linalg.norm(x, axis=1, keepdims=True))
    out = run("scale.py", "--vectors", tmp_path / "v.npy", "--sizes", "500,1500", "--kinds", "flat,ivf-sq8,auto",
              "--queries", "20", "--target-recall", "0.5", "--sweep", "--tried")
    assert " 1500         ivf-sq8 " in out and "nprobe=" in out and "auto:flat" in out and "tried: ivf-sq8 nprobe=1" in out


def test_dedup_threshold_benchmark():
    out = run("dedup_threshold.py", "--arxiv-path", SAMPLE, "--top", "3")
    assert "seed corpus: 47 abstracts" in out and "arXiv: 48 abstracts" in out


def test_update_benchmark(tmp_path):
    out = run("update.py", "--data", SAMPLE, "--new", "8", "--work", tmp_path)
    assert "8 new papers" in out and "in place" in out and "same paper count: True (48 vs 48)" in out


def test_ingest_memory_benchmark():
    out = run("ingest_memory.py", "--data", SAMPLE, "--before", "HEAD")
    assert "48 records (jsonl)" in out and "now (streaming)" in out
    assert "same records and skipped lines from both readers: yes" in out


def test_ray_engine_benchmark():
    out = run("ray_engine.py", "--data", SAMPLE, "--n", "24", "--unit-size", "12", "--workers", "2", "--rounds", "1")
    assert "24 texts" in out and "| ray (2 workers) |" in out
    assert "bit-identical to the local vectors: yes (1/1 rounds)" in out


def test_similar_text_benchmark():
    out = run("similar_text.py", "--embedder", "fake")
    assert "20 paraphrases" in out and "< near-verbatim min 0.700: yes" in out
    assert "near-verbatim texts (stored versions, PDF copies) whose paper, and only it, is left out: 80/80" in out


def test_record_ids_benchmark(tmp_path):
    papers = [json.loads(line) for line in SAMPLE.read_text().splitlines()][:12]
    rows = [(str(i), p) for i, p in enumerate(papers)] + [("99", papers[0])]  # one paper under two ids
    (tmp_path / "abstracts-csfcube.reconstructed.jsonl").write_text("".join(
        json.dumps({"paper_id": pid, "title": p["title"], "abstract": [p["abstract"]]}) + "\n" for pid, p in rows))
    (tmp_path / "queries-release.csv").write_text("pid,facet,year,title,paper type\n0,method,2020,x,y\n99,method,2020,x,y\n")
    out = run("record_ids.py", "--data", tmp_path, "--embedder", "fake")
    assert "13 papers (13 distinct ids) -> 13 records" in out and "query ids resolved by `similar ID`: 2/2" in out
    assert "likely duplicates listed, not merged: 1 (1 different ids)" in out


@pytest.mark.slow
def test_cold_query_benchmark():
    out = run("cold_query.py", "--runs", "1")
    assert "| ratio search / imports, pair by pair |" in out


@pytest.mark.slow
def test_build_speed_levers_benchmark(tmp_path):
    (tmp_path / "corpus.jsonl").write_text("".join(
        json.dumps({"_id": p["id"], "title": p["title"], "text": p["abstract"]}) + "\n"
        for p in map(json.loads, SAMPLE.read_text().splitlines())))
    out = run("build_speed.py", "--levers", "--n", "40", "--rounds", "1", "--data", tmp_path)
    assert "| 2 sessions x 1 thread, batch 32 (default) |" in out and "(before) |" in out


def test_serve_load_benchmark(seed_index_path):
    out = run("serve_load.py", "--index", seed_index_path, "--cli", "tests.fake_cli",
              "--clients", 2, "--requests", 10)
    assert "20 requests in" in out and "| all | 20 | 0 |" in out and "server stopped (exit status 0)" in out


def test_themes_speed_benchmark(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "SEMSEARCH_CACHE": "off"}
    subprocess.run([sys.executable, "-m", "tests.fake_cli", "build", str(ROOT / "corpus"), "--index", str(tmp_path / "idx")],
                   check=True, capture_output=True, cwd=ROOT, env=env, timeout=300)
    out = run("themes_speed.py", tmp_path / "idx", "--runs", "1", "--embedder", "fake", "--auto")
    assert "named, cold (new process)" in out and "named, warm" in out and "discovered, cold" in out
    assert "9 themes over 25 papers, 25 records read" in out


def test_theme_labels_benchmark(tmp_path):
    import gzip

    lines = SAMPLE.read_text(encoding="utf-8").splitlines(keepends=True)
    with gzip.open(tmp_path / "abstracts.jsonl.gz", "wt", encoding="utf-8") as f:
        f.writelines(lines)
    (tmp_path / "clustering_subset.jsonl").write_text("".join(lines[:6] + lines[8:14]), encoding="utf-8")
    sets = {"per_theme": 8, "sets": {"tiny": {"galaxies": "astro-ph.GA", "robotics": "cs.RO", "cryptography": "cs.CR"}}}
    (tmp_path / "sets.json").write_text(json.dumps(sets), encoding="utf-8")
    papers = [json.loads(line) for line in lines]
    draw = {"categories": ["cs.CL", "cs.CV", "cs.GT"], "themes": {"language": "cs.CL", "vision": "cs.CV", "games": "cs.GT"},
            "ids": [p["id"] for p in papers if p["primary_category"] in ("cs.CL", "cs.CV", "cs.GT")]}
    (tmp_path / "small.json").write_text(json.dumps({"draws": [draw]}), encoding="utf-8")
    out = run("theme_labels.py", "--data", tmp_path, "--sets", tmp_path / "sets.json", "--small-sets",
              tmp_path / "small.json", "--embedder", "fake", "--test")
    assert "S  shipped: label_clusters now" in out and "AutoThemes on the subset" in out and "seed corpus" in out


def test_clustering_maxsim_matches_brute_force():
    """Part 0e's paper-to-paper MaxSim (benchmarks/clustering.py) against a loop over piece pairs."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_clustering", ROOT / "benchmarks" / "clustering.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rng = np.random.default_rng(3)
    states = []
    for n in (5, 1, 7, 3):
        s = rng.normal(size=(n, 6))
        states.append((s / np.linalg.norm(s, axis=1, keepdims=True)).astype(np.float16))
    masks = [np.array([True, False, True, True, False]), np.array([False]), rng.random(7) < 0.5, np.ones(3, bool)]
    late = bench.maxsim(states, masks)

    def one_way(a, b, mask):
        best = [max(float(a[i].astype(np.float32) @ b[j].astype(np.float32)) for j in range(len(b))) for i in range(len(a))]
        keep = mask if mask.any() else np.ones(len(a), bool)
        return np.mean(best), np.mean(np.array(best)[keep])

    for i in range(4):
        for j in range(4):
            (ab, abc), (ba, bac) = one_way(states[i], states[j], masks[i]), one_way(states[j], states[i], masks[j])
            assert late["all"][i, j] == pytest.approx((ab + ba) / 2, abs=1e-5)
            assert late["content"][i, j] == pytest.approx((abc + bac) / 2, abs=1e-5)
    centred = bench._hub_centred(late["all"])
    assert np.allclose(centred, centred.T)

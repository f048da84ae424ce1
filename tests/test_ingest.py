"""Page shapes, structured formats and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from semsearch.errors import CorpusError
from semsearch.ingest import read_file, read_paths
from semsearch.ingest.base import _collect, _NoAbstracts, _text_lines
from semsearch.ingest.files import _result
from semsearch.ingest.formats import detect, stream
from semsearch.ingest.pages import parse_page


def decode(path: str, data: bytes) -> str:
    """The reference decoder: a whole file's bytes -> text, as the streaming reader decodes it."""
    import codecs

    if not data.strip():
        raise _NoAbstracts(path, "file is empty")
    if b"\x00" in data[:8192]:
        raise _NoAbstracts(path, "binary file (NUL bytes), not text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        at = exc.start + (len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0)
        raise CorpusError(path, f"not UTF-8 text (byte {at}: {exc.reason})", data[:at].count(b"\n") + 1) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def parse_text(path: str, text: str, columns=None):
    """The reference parser: a whole text, format detected on all of it, parsed in one go."""
    fmt = detect(text, columns)
    if fmt is None:
        fmt, (records, skipped) = parse_page(path, text)
    else:
        records, skipped = _collect(stream(fmt, path, _text_lines(text), columns))
    return _result(path, fmt, records, skipped)

from .conftest import CORPUS

ABSTRACT = (
    "We propose a method for partitioning embedding tables across many devices so that training "
    "large recommendation models needs less communication and memory than before, and we measure it."
)
OTHER = (
    "Post-training quantization of weights and activations reduces the memory and latency of large "
    "language models, and learned rotations remove outliers that would otherwise hurt accuracy badly."
)


def seed(prefix: str) -> Path:
    return next(CORPUS.glob(f"{prefix}_*.txt"))


def test_abstract_lines_page_has_no_titles_and_counts_chrome():
    r = read_file(seed("000"))
    assert r.format == "abstract-lines"
    assert len(r.records) == 10
    assert all(rec.title is None for rec in r.records)
    assert [(s.line, s.text) for s in r.skipped] == [(1, "Jack")]


def test_collaborator_page_pairs_titles_with_abstracts():
    r = read_file(seed("002"))
    assert r.format == "collaborator-page"
    assert len(r.records) == 8
    first = r.records[0]
    assert first.title == "Accelerating Transformer Inference and Training with 2:4 Activation Sparsity"
    assert first.abstract.startswith("In this paper, we demonstrate how to leverage 2:4 sparsity")
    assert {s.text for s in r.skipped} == {"Goto", "Collaborating Authors", "Choudhary, Dhruv"}


def test_arxiv_listing_ids_belong_to_the_abstract_before_them():
    r = read_file(seed("003"))
    assert r.format == "arxiv-listing"
    def id_of(start: str) -> str | None:
        return next(rec.arxiv_id for rec in r.records if rec.abstract.startswith(start))

    # The papers' real ids: Llama 3 is 2407.21783, Wukong 2403.02545, RecD 2211.05239.
    assert id_of("Modern artificial intelligence") == "2407.21783"
    assert id_of("Scaling laws play") == "2403.02545"
    assert id_of("We present RecD") == "2211.05239"
    assert r.records[-1].arxiv_id == "2104.05158"  # the file's last line is a bare id
    assert len(r.records) == 10 and len({rec.arxiv_id for rec in r.records}) == 10
    assert [(s.line, s.text) for s in r.skipped] == [(3, "12 pages")]


def test_arxiv_listing_same_line_layout_when_ids_lead_every_abstract(tmp_path):
    f = tmp_path / "listing.txt"
    f.write_text(f"arXiv:2401.00001v2 {ABSTRACT}\narXiv:2401.00002 {OTHER}\n")
    r = read_file(f)
    assert [(x.arxiv_id, x.abstract[:10]) for x in r.records] == [("2401.00001", ABSTRACT[:10]), ("2401.00002", OTHER[:10])]


def test_arxiv_listing_never_gives_an_id_across_another_abstract(tmp_path):
    # Offset layout: the id after OTHER belongs to OTHER; ABSTRACT (no id follows it) gets none.
    f = tmp_path / "listing.txt"
    f.write_text(f"{ABSTRACT}\n{OTHER}\narXiv:2401.00009\n")
    r = read_file(f)
    assert [(x.abstract[:10], x.arxiv_id) for x in r.records] == [(ABSTRACT[:10], None), (OTHER[:10], "2401.00009")]


def test_author_page_reads_category_date_title_authors():
    r = read_file(seed("004"))
    assert r.format == "author-page"
    assert len(r.records) == 16
    llama = r.records[0]
    assert llama.title == "The Llama 3 Herd of Models"
    assert llama.date == "2024-07-31" and llama.categories == ("AI",)
    assert llama.authors[:2] == ("Aaron Grattafiori", "Abhimanyu Dubey")
    growth = next(x for x in r.records if x.title.startswith("Alternate Model Growth"))
    assert growth.date == "2021-05-04" and growth.categories == ("IR",)  # `IRMay 4, 2021Code`
    assert len(r.skipped) == 8  # profile chrome: name, LG, h-index, counts...


def test_jsonl_with_partly_bad_lines_keeps_the_good_ones(tmp_path):
    f = tmp_path / "papers.jsonl"
    f.write_text(
        json.dumps({"title": "T1", "abstract": ABSTRACT, "arxiv_id": "arXiv:2101.00001v3", "authors": ["A", "B"]})
        + "\n{not json\n"
        + json.dumps({"title": "no abstract"})
        + "\n"
        + json.dumps({"abstract": OTHER, "categories": "cs.LG cs.IR", "date": "2020-01-02"})
        + "\n"
    )
    r = read_file(f)
    assert r.format == "jsonl"
    assert [x.arxiv_id for x in r.records] == ["2101.00001", None]
    assert r.records[1].categories == ("cs.LG", "cs.IR")
    assert [(s.line, s.reason.split(" (")[0]) for s in r.skipped] == [
        (2, "invalid JSON"),
        (3, "field 'abstract' is missing or empty"),
    ]


def test_csv_with_quoted_commas_and_newlines(tmp_path):
    f = tmp_path / "papers.csv"
    f.write_text('title,abstract,id\n"Sharding, at scale","' + ABSTRACT + '\nsecond line",p1\nT2,,p2\n')
    r = read_file(f)
    assert r.format == "csv"
    assert r.records[0].title == "Sharding, at scale" and r.records[0].id == "p1"
    assert r.records[0].abstract.endswith("second line")
    assert [(s.line, s.reason) for s in r.skipped] == [(4, "field 'abstract' is missing or empty")]


def test_windows_line_endings_parse_like_unix(tmp_path):
    f = tmp_path / "page.txt"
    f.write_bytes(seed("000").read_bytes().replace(b"\n", b"\r\n"))
    assert [x.abstract for x in read_file(f).records] == [x.abstract for x in read_file(seed("000")).records]


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty.txt: file is empty"),
        (b"\x00\x01\x02binary", "empty.txt: binary file (NUL bytes), not text"),
        (b"just a title\nand another short line\n", "empty.txt: no recognisable abstracts"),
        (b"ok line\n\xff\xfe broken", "empty.txt:2: not UTF-8 text"),
    ],
)
def test_bad_files_raise_one_line_errors_naming_the_file(tmp_path, content, message):
    f = tmp_path / "empty.txt"
    f.write_bytes(content)
    with pytest.raises(CorpusError) as exc:
        read_file(f)
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_missing_path_is_named(tmp_path):
    with pytest.raises(CorpusError, match=r"nope\.txt: no such file or directory"):
        read_paths([tmp_path / "nope.txt"])


def test_directory_reads_every_seed_page():
    assert [Path(r.path).name[:3] for r in read_paths([CORPUS])] == ["000", "001", "002", "003", "004"]


LINES = st.one_of(
    st.text(max_size=200),
    st.sampled_from(["", "Abstract:", "arXiv:2104.05158", "LGJun 1, 2022Code", "{", "title,abstract", "12 pages"]),
    st.builds(lambda p, t: p + t, st.sampled_from(["Abstract:", "arXiv:2101.00001", "", "{\"abstract\": "]),
              st.sampled_from([ABSTRACT, OTHER, "short"])),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(LINES, max_size=25))
def test_parsers_never_crash_they_parse_or_raise_corpus_error(lines):
    text = "\n".join(lines)
    try:
        result = parse_text("fuzz.txt", text)
    except CorpusError as exc:
        assert str(exc).startswith("fuzz.txt")
        return
    assert result.records
    for rec in result.records:
        assert rec.abstract.strip() and rec.source == "fuzz.txt" and rec.line >= 1


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_are_read_or_refused_with_a_corpus_error_naming_the_file(data):
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "x.bin"
        f.write_bytes(data)
        try:
            result = read_file(f)
        except CorpusError as exc:
            assert exc.path == str(f) and exc.reason
            return
    assert result.records and all(r.abstract.strip() and r.source == str(f) for r in result.records)


def test_arxiv_metadata_snapshot_lines_gzip(tmp_path):
    import gzip

    line = {
        "id": "2104.05158", "title": "Software-Hardware Co-design", "abstract": ABSTRACT,
        "authors": "Dheevatsa Mudigere, Yuchen Hao and Jianyu Huang", "categories": "cs.DC cs.AI cs.LG",
        "update_date": "2022-02-28", "versions": [{"version": "v1", "created": "Sun, 11 Apr 2021 20:14:51 GMT"}],
    }
    f = tmp_path / "snapshot.jsonl.gz"
    f.write_bytes(gzip.compress((json.dumps(line) + "\n").encode()))
    [rec] = read_file(f).records
    assert rec.arxiv_id == "2104.05158" and rec.id is None
    assert rec.authors == ("Dheevatsa Mudigere", "Yuchen Hao", "Jianyu Huang")
    assert rec.categories == ("cs.DC", "cs.AI", "cs.LG") and rec.date == "2022-02-28"


BIBTEX = (
    "% exported\n"
    "@article{zha2022autoshard,\n"
    "  title = {{AutoShard}: Automated Embedding Table Sharding},\n"
    '  author = "Zha, Daochen and Feng, Louis",\n'
    "  year = 2022,\n"
    "  eprint = {2208.06399}, archivePrefix = {arXiv},\n"
    f"  abstract = {{{ABSTRACT} With {{nested}} braces and G{{\\\"o}}del.}}\n"
    "}\n\n"
    "@inproceedings{noabs, title={No abstract here}, year={2020}}\n"
    "@misc{broken, title = {unterminated\n"
)


def test_bibtex_entries_with_abstracts(tmp_path):
    f = tmp_path / "zotero.bib"
    f.write_text(BIBTEX)
    r = read_file(f)
    assert r.format == "bibtex"
    [rec] = r.records
    assert rec.title == "AutoShard: Automated Embedding Table Sharding" and rec.arxiv_id == "2208.06399"
    assert rec.authors == ("Zha, Daochen", "Feng, Louis") and rec.date == "2022" and rec.line == 2
    assert rec.abstract.endswith("With nested braces and Gödel.")  # LaTeX decoded, not stripped
    assert [(s.line, s.reason.split(" (")[0]) for s in r.skipped] == [
        (10, "BibTeX entry without an abstract"),
        (11, "malformed BibTeX entry"),
    ]


def test_csv_column_mapping(tmp_path):
    from semsearch.ingest import parse_columns

    f = tmp_path / "export.tsv"
    f.write_text(f"Paper Title\tSummary\nSharding\t{ABSTRACT}\n")
    columns = parse_columns("title=Paper Title,abstract=Summary")
    [rec] = read_file(f, columns).records
    assert rec.title == "Sharding" and rec.abstract == ABSTRACT
    with pytest.raises(CorpusError, match="--columns: 'summary': write FIELD=COLUMN"):
        parse_columns("summary")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["@article{k,", "title = {x},", "abstract = {" + ABSTRACT, "}", "\"", "{", "@misc(", "="]),
                max_size=20))
def test_bibtex_parser_never_crashes(parts):
    from semsearch.ingest import stream_bibtex

    records, skipped = _collect(stream_bibtex("fuzz.bib", _text_lines("\n".join(parts))))
    assert all(r.abstract for r in records)


# --- streaming ---------------------------------------------------------------------------

CSV = 'title,abstract,id\n"Sharding, at scale","' + ABSTRACT + '\nsecond line",p1\nT2,,p2\n'
TSV = f"Paper Title\tSummary\nSharding\t{ABSTRACT}\n"
JSONL = (json.dumps({"title": "T1", "abstract": ABSTRACT, "arxiv_id": "2101.00001"}) + "\n{not json\n\n"
         + json.dumps({"abstract": OTHER, "authors": "A, B and C", "versions": [{"created": "Sun, 11 Apr 2021"}]}))
FIXTURES = {
    **{p.name: p.read_bytes() for p in sorted(CORPUS.glob("*.txt"))},
    "arxiv_sample.jsonl": (CORPUS.parent / "tests" / "data" / "arxiv_sample.jsonl").read_bytes(),
    "papers.csv": CSV.encode(),
    "export.tsv": TSV.encode(),
    "papers.jsonl": JSONL.encode(),
    "zotero.bib": BIBTEX.encode(),
}
TSV_COLUMNS = {"title": "Paper Title", "abstract": "Summary"}


def whole_file(f: Path, columns=None):
    """The reference: the file read whole (and gunzipped), decoded, then parsed as one text."""
    import gzip
    import zlib

    data = f.read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise CorpusError(str(f), f"cannot read: {exc}") from None
    return parse_text(str(f), decode(str(f), data), columns)


def outcome(read, *args):
    """A read's FileResult, or its error message: what streaming and whole-text must agree on."""
    try:
        return read(*args)
    except CorpusError as exc:
        return str(exc)


@pytest.mark.parametrize("variant", ["plain", "gzip", "crlf"])
@pytest.mark.parametrize("name", list(FIXTURES))
def test_streaming_reads_exactly_what_the_whole_text_gives(tmp_path, name, variant):
    import gzip

    data = FIXTURES[name].replace(b"\n", b"\r\n") if variant == "crlf" else FIXTURES[name]
    f = tmp_path / name
    f.write_bytes(gzip.compress(data) if variant == "gzip" else data)
    columns = TSV_COLUMNS if name == "export.tsv" else None
    streamed = read_file(f, columns)
    assert streamed == whole_file(f, columns)
    assert streamed.records and streamed.format in (
        "jsonl", "csv", "bibtex", "abstract-lines", "collaborator-page", "arxiv-listing", "author-page")


PIECES = st.sampled_from([
    "", "\r", "\r\n", "\ufeff", "\xa0", "{", "}", "(", '"', ",", "\t", "=", "Abstract: " + ABSTRACT, "arXiv:2104.05158",
    "title,abstract", "abstract\ttitle", f'"a,b","{ABSTRACT}"', json.dumps({"abstract": ABSTRACT, "title": "T"}),
    '{"abstract": 1' + "1" * 5000 + "}", "[" * 3000, '{"abstract": "' + ABSTRACT + '", "versions": [{"created": "x, 99"}]}',
    "@article{k,", "@misc", "@comment{", f"abstract = {{{ABSTRACT}", f'abstract = "{ABSTRACT}"', "}}", "% exported",
])
CONTENT = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda parts, sep, tail: sep.join(parts).encode() + tail,
              st.lists(st.one_of(PIECES, st.text(max_size=40)), max_size=20), st.sampled_from(["\n", "\r\n", "\r"]),
              st.binary(max_size=3)),
)


@settings(max_examples=300, deadline=None)
@given(CONTENT, st.booleans())
def test_any_bytes_stream_like_the_whole_text_or_raise_corpus_error(tmp_path_factory, data, gz):
    import gzip

    f = tmp_path_factory.mktemp("fuzz") / "f.txt"
    f.write_bytes(gzip.compress(data) if gz else data)
    streamed, whole = outcome(read_file, f), outcome(whole_file, f)
    if isinstance(whole, str) and ": cannot read: " in whole:
        assert isinstance(streamed, str)  # a damaged gzip stream: reading may stop at another error first
    else:
        assert streamed == whole
    if isinstance(streamed, str):
        assert streamed.startswith(str(f)) and "\n" not in streamed


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(PIECES, st.text(max_size=80)), max_size=25), st.sampled_from(["jsonl", "csv", "bibtex"]))
def test_streaming_parsers_take_any_lines(lines, fmt):
    from semsearch.ingest import RawRecord, Skipped, stream_bibtex, stream_csv, stream_jsonl

    parser = {"jsonl": stream_jsonl, "csv": stream_csv, "bibtex": stream_bibtex}[fmt]
    try:
        items = list(parser("fuzz", (line + "\n" for line in lines)))
    except CorpusError:
        return
    assert all(isinstance(x, (RawRecord, Skipped)) and x.source == "fuzz" and x.line >= 1 for x in items)
    assert all(x.abstract.strip() for x in items if isinstance(x, RawRecord))


def test_a_broken_bibtex_entry_does_not_swallow_the_next(tmp_path):
    f = tmp_path / "refs.bib"
    f.write_text(f"@article{{a, abstract = {{{ABSTRACT}\n\n@article{{b,\n  abstract = {{{OTHER}}}}}\n")
    r = read_file(f)
    assert [(x.line, x.abstract) for x in r.records] == [(3, OTHER)]
    assert [(s.line, s.reason) for s in r.skipped] == [(1, "malformed BibTeX entry (unbalanced braces or quotes)")]


def test_non_utf8_in_a_gzip_file_names_the_line(tmp_path):
    import gzip

    f = tmp_path / "papers.jsonl.gz"
    data = JSONL.encode() + b"\n{\"abstract\": \"caf\xe9\"}\n"
    f.write_bytes(gzip.compress(data))
    at = data.index(b"\xe9")
    with pytest.raises(CorpusError, match=rf"papers\.jsonl\.gz:5: not UTF-8 text \(byte {at}: invalid continuation"):
        read_file(f)


def test_only_scraped_pages_are_capped_in_size(tmp_path, monkeypatch):
    monkeypatch.setattr("semsearch.ingest.files.MAX_PAGE_BYTES", 1000)
    big = tmp_path / "big.jsonl"
    big.write_text("".join(json.dumps({"abstract": f"{ABSTRACT} {i}"}) + "\n" for i in range(20)))
    assert len(read_file(big).records) == 20
    page = tmp_path / "page.txt"
    page.write_text(f"Abstract: {ABSTRACT}\n" * 20)
    with pytest.raises(CorpusError, match=r"page\.txt: file is larger than 0 MiB and not JSONL, CSV or BibTeX"):
        read_file(page)


MEASURE = """
import resource, sys
from semsearch.ingest import read_file
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
r = read_file(sys.argv[1])
print(len(r.records), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base)
"""


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_reading_a_large_file_holds_the_records_not_the_file(tmp_path, gz):
    """32 MB of JSON lines whose 100 kB junk fields are dropped: peak RSS must grow by far less
    than the file (a whole-file reader holds it several times over: bytes, text, lines)."""
    import gzip
    import os
    import subprocess
    import sys

    f = tmp_path / ("big.jsonl.gz" if gz else "big.jsonl")
    lines, size = 320, 0
    with (gzip.open(f, "wb", compresslevel=1) if gz else f.open("wb")) as out:
        for i in range(lines):
            line = json.dumps({"junk": os.urandom(50_000).hex(), "abstract": f"{ABSTRACT} {i}"}).encode() + b"\n"
            size += out.write(line)
    run = subprocess.run([sys.executable, "-c", MEASURE, str(f)], check=False, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    records, grown_kb = map(int, run.stdout.split())
    assert records == lines
    assert grown_kb * 1024 < size / 8, f"peak RSS grew {grown_kb / 1024:.1f} MiB reading {size / 2**20:.1f} MiB"


def test_progress_bar_goes_to_stderr(capsys, monkeypatch):
    monkeypatch.setattr("semsearch.ingest.files.PROGRESS_MIN_BYTES", 0)
    with_bar = read_paths([CORPUS], progress=True)
    err = capsys.readouterr().err
    assert "reading" in err and "100%" in err
    assert with_bar == read_paths([CORPUS])
    assert capsys.readouterr().err == ""  # no bar unless asked for


# --- input is read as written --------------------------------------------------------------

LONG = (
    "We study how sharded embedding tables behave when recommendation models are trained on many "
    "accelerators at once, and we show that a simple cost model predicts the communication they need."
)


def write_csv(path: Path, header: list[str], rows: list[list[str]], delimiter: str = ",") -> Path:
    import csv

    with path.open("w", newline="") as f:
        w = csv.writer(f, delimiter=delimiter)  # "\r\n" rows: a bare "\r" in a cell is quoted
        w.writerow(header)
        w.writerows(rows)
    return path


def refusal(f: Path, columns=None) -> str:
    from semsearch.ingest import parse_columns

    with pytest.raises(CorpusError) as exc:
        read_file(f, parse_columns(columns))
    assert "\n" not in str(exc.value)
    return str(exc.value)


def test_csv_without_an_abstract_column_is_refused_not_read_as_a_page(tmp_path):
    f = write_csv(tmp_path / "papers.csv", ["id", "name", "summary"], [["1", "Sharding", ABSTRACT], ["2", "Rotations", OTHER]])
    assert refusal(f) == (
        f"{f}: cannot tell which column holds the abstract; its columns are: id, name, summary; "
        "use --columns title=name,abstract=summary"
    )
    [a, b] = read_file(f, {"title": "name", "abstract": "summary"}).records
    assert (a.id, a.title, a.abstract) == ("1", "Sharding", ABSTRACT) and b.abstract == OTHER


def test_tsv_columns_that_the_file_lacks_are_refused(tmp_path):
    f = write_csv(tmp_path / "export.tsv", ["Paper Title", "Summary"], [["Sharding", ABSTRACT]], "\t")
    assert refusal(f, "title=Paper Title,abstract=Abstract") == (
        f"{f}: no column 'Abstract' (from --columns abstract=Abstract); its columns are: Paper Title, Summary; "
        "use --columns 'title=Paper Title,abstract=Summary'"
    )


def test_csv_without_a_header_row_is_refused(tmp_path):
    f = tmp_path / "rows.csv"
    f.write_text(f'Sharding,"{ABSTRACT}"\nRotations,"{OTHER}"\n')
    assert refusal(f) == (
        f"{f}:1: the first row is not a header (a cell holds 28 words): "
        "add a header row naming the columns, e.g. title,abstract"
    )


def test_csv_of_something_else_holds_no_abstracts(tmp_path):
    f = write_csv(tmp_path / "results.csv", ["model", "recall"], [["a", "0.5"], ["b", "0.7"]])
    assert refusal(f) == (
        f"{f}: cannot tell which column holds the abstract, and no column holds abstracts (20+ words); "
        "its columns are: model, recall; if one does, use --columns abstract=COLUMN"
    )


def test_csv_with_recognised_headers_needs_no_columns(tmp_path):
    f = write_csv(tmp_path / "ok.csv", ["Title", "Abstract", "arxiv_id"], [["Herd", ABSTRACT, "2407.21783"]])
    [rec] = read_file(f).records
    assert (rec.title, rec.abstract, rec.arxiv_id, rec.date) == ("Herd", ABSTRACT, "2407.21783", "2024-07")


def test_jsonl_columns_map_the_files_own_fields(tmp_path):
    f = tmp_path / "papers.jsonl"
    f.write_text(json.dumps({"name": "Sharding", "summary": ABSTRACT, "abstract": "not this"}) + "\n"
                 + json.dumps({"name": "Rotations", "summary": OTHER}) + "\n")
    records = read_file(f, {"title": "name", "abstract": "summary"}).records
    assert [(r.title, r.abstract) for r in records] == [("Sharding", ABSTRACT), ("Rotations", OTHER)]
    assert refusal(f, "abstract=text") == (
        f"{f}: no field 'text' (from --columns abstract=text) in any record; its fields are: name, summary, abstract; "
        "use --columns title=name,abstract=summary"
    )


def test_jsonl_without_a_known_abstract_field_is_refused(tmp_path):
    f = tmp_path / "papers.jsonl"
    f.write_text(json.dumps({"name": "Sharding", "summary": ABSTRACT}) + "\n")
    assert refusal(f) == (
        f"{f}: cannot tell which field holds the abstract; its fields are: name, summary; "
        "use --columns title=name,abstract=summary"
    )


def test_beir_corpus_is_read_without_columns(tmp_path):
    f = tmp_path / "corpus.jsonl"
    f.write_text(json.dumps({"_id": "4983", "title": "Microstructure", "text": ABSTRACT, "metadata": {}}) + "\n"
                 + json.dumps({"_id": "5836", "title": "", "text": OTHER}) + "\n")
    r = read_file(f)
    assert r.format == "jsonl"
    assert [(x.id, x.title, x.abstract) for x in r.records] == [("4983", "Microstructure", ABSTRACT), ("5836", None, OTHER)]


def test_a_directory_skips_files_without_abstracts_but_a_named_one_fails(tmp_path):
    d = tmp_path / "corpus"
    d.mkdir()
    write_csv(d / "papers.csv", ["title", "abstract"], [["Sharding", ABSTRACT]])
    (d / "notes.txt").write_text("todo: read these\n")
    (d / "empty.txt").write_text("")
    (d / "logo.png").write_bytes(b"\x89PNG\x00\x00")
    results = {Path(r.path).name: r for r in read_paths([d])}
    assert [len(results[n].records) for n in ("papers.csv", "notes.txt", "empty.txt", "logo.png")] == [1, 0, 0, 0]
    assert [(s.line, s.reason) for n in ("empty.txt", "logo.png") for s in results[n].skipped] == [
        (0, "file is empty"),
        (0, "binary file (NUL bytes), not text"),
    ]
    assert results["notes.txt"].skipped[0].reason.startswith("no recognisable abstracts (")
    assert {results[n].format for n in ("notes.txt", "empty.txt", "logo.png")} == {"skipped"}
    with pytest.raises(CorpusError, match=r"notes\.txt: no recognisable abstracts"):
        read_paths([d / "notes.txt"])


def test_a_directory_with_no_abstracts_at_all_is_an_error(tmp_path):
    (tmp_path / "notes.txt").write_text("todo\n")
    with pytest.raises(CorpusError, match=r"notes\.txt: no file holds abstracts \(1 skipped; first: no recognisable"):
        read_paths([tmp_path])


def test_a_directory_still_refuses_a_csv_it_cannot_map(tmp_path):
    write_csv(tmp_path / "papers.csv", ["name", "summary"], [["Sharding", ABSTRACT]])
    with pytest.raises(CorpusError, match="cannot tell which column holds the abstract"):
        read_paths([tmp_path])


LATEX_BIB = (
    "@article{schoelkopf2021,\n"
    '  author = {Sch{\\"o}lkopf, Bernhard and {\\L}ukasz Kaiser},\n'
    '  title = {A na{\\"\\i}ve predator{\\textendash}prey model},\n'
    "  year = {2021}, month = jul,\n"
    f"  abstract = {{{ABSTRACT} It improves recall by 5% \\& more.}}\n"
    "}\n"
    "@misc{keyonly, title = {Key only}, year = 2019, month = {September},\n"
    f"  abstract = {{{OTHER}}}}}\n"
    "@misc{scholar, journal = {arXiv preprint arXiv:2407.21783},\n"
    f"  abstract = {{{LONG}}}}}\n"
)


def test_bibtex_latex_is_decoded_to_unicode(tmp_path):
    f = tmp_path / "refs.bib"
    f.write_text(LATEX_BIB)
    a, b, c = read_file(f).records
    assert a.authors == ("Schölkopf, Bernhard", "Łukasz Kaiser")
    assert a.title == "A naïve predator–prey model" and a.date == "2021-07" and a.id == "bibtex:schoelkopf2021"
    assert a.abstract.endswith("It improves recall by 5% & more.")
    assert (b.id, b.date, b.line) == ("bibtex:keyonly", "2019-09", 7)
    assert (c.id, c.arxiv_id, c.date, c.line) == (None, "2407.21783", "2024-07", 9)


def test_bibtex_duplicate_field_is_skipped_with_its_line(tmp_path):
    f = tmp_path / "refs.bib"
    f.write_text(f"@article{{a, abstract = {{{ABSTRACT}}}}}\n\n@article{{b,\n abstract = {{x}}, abstract = {{{OTHER}}}}}\n")
    r = read_file(f)
    assert [x.line for x in r.records] == [1]
    assert [(s.line, s.reason.split(" (")[0]) for s in r.skipped] == [(3, "malformed BibTeX entry")]
    assert "abstract" in r.skipped[0].reason


def test_hand_written_bibtex_decoding_is_gone():
    import semsearch.ingest as ingest

    assert not hasattr(ingest, "_bib_clean") and not hasattr(ingest, "_bib_value")


@pytest.mark.parametrize("arxiv_id, month", [
    ("2407.21783", "2024-07"), ("0704.0001", "2007-04"), ("1912.12345v2", "2019-12"),
    ("hep-th/9901001", "1999-01"), ("math.GT/0309136", "2003-09"), ("2413.00001", None),
])
def test_arxiv_id_month(arxiv_id, month):
    from semsearch.ingest import arxiv_id_month

    assert arxiv_id_month(arxiv_id) == month


def test_a_record_without_a_date_takes_its_arxiv_ids_month_in_every_format(tmp_path):
    pages = {
        "listing.txt": f"arXiv:2407.21783 {ABSTRACT}\n",
        "p.jsonl": json.dumps({"abstract": ABSTRACT, "arxiv_id": "2407.21783"}) + "\n",
        "dated.jsonl": json.dumps({"abstract": ABSTRACT, "arxiv_id": "2407.21783", "date": "2024-08-01"}) + "\n",
        "p.csv": f'abstract,arxiv_id\n"{ABSTRACT}",2407.21783\n',
        "p.bib": f"@article{{k, eprint = {{2407.21783}}, abstract = {{{ABSTRACT}}}}}\n",
    }
    dates = {}
    for name, text in pages.items():
        (tmp_path / name).write_text(text)
        dates[name] = read_file(tmp_path / name).records[0].date
    assert dates == {"listing.txt": "2024-07", "p.jsonl": "2024-07", "dated.jsonl": "2024-08-01",
                     "p.csv": "2024-07", "p.bib": "2024-07"}


# --- properties ----------------------------------------------------------------------------

NAME = st.text(st.characters(whitelist_categories=("Lu", "Ll")), min_size=1, max_size=8)
CELL = st.one_of(st.text(max_size=30), st.sampled_from([ABSTRACT, OTHER, LONG, "a, b", 'say "hi"', "x\ny"]))


@settings(max_examples=150, deadline=None)
@given(st.lists(NAME, min_size=2, max_size=5, unique_by=str.lower), st.data(), st.sampled_from([",", "\t"]))
def test_csv_never_yields_a_whole_row_as_an_abstract(tmp_path_factory, header, data, delimiter):
    rows = data.draw(st.lists(st.lists(CELL, min_size=len(header), max_size=len(header)), min_size=1, max_size=6))
    f = write_csv(tmp_path_factory.mktemp("csv") / "t.csv", header, rows, delimiter)
    try:
        result = read_file(f)
    except CorpusError as exc:
        assert "\n" not in str(exc)
        return
    cells = {" ".join(c.split()) for row in rows for c in row}
    lines = {" ".join(line.split()) for line in f.read_text().split("\n")}
    for rec in result.records:
        assert rec.abstract in cells or result.format != "csv"
        assert rec.abstract not in lines - cells, f"a whole row became an abstract ({result.format})"


ACCENTS = {"ö": '{\\"o}', "é": "{\\'e}", "Ł": "{\\L}", "ï": '{\\"\\i}', "–": "{\\textendash}", "ç": "{\\c{c}}",
           "ß": "{\\ss}", "ø": "{\\o}", "&": "\\&", "%": "\\%"}


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(sorted(ACCENTS)), st.text("abcXYZ019 ", min_size=1, max_size=6)),
                min_size=1, max_size=12))
def test_bibtex_round_trips_titles_with_accents(tmp_path_factory, parts):
    from semsearch.ingest import clean_text

    title = clean_text("".join(parts))
    latex = "".join(ACCENTS.get(p, p) for p in parts)
    f = tmp_path_factory.mktemp("bib") / "t.bib"
    f.write_text(f"@article{{k, title = {{{latex}}}, abstract = {{{ABSTRACT}}}}}\n")
    [rec] = read_file(f).records
    assert rec.title == (title or None)


@settings(max_examples=150, deadline=None)
@given(st.text(st.characters(blacklist_characters="\\{}$~%&`", blacklist_categories=("Cs",)), max_size=80))
def test_latex_decoding_fast_path_agrees_with_the_decoder(text):
    """Text without LaTeX specials skips pylatexenc: it must decode the same (up to spacing)."""
    from semsearch.ingest import clean_text
    from semsearch.ingest.bibtex import _bib_middleware

    decoder = _bib_middleware()[0]._decoder
    if "--" in text or "''" in text:
        return
    assert clean_text(decoder.latex_to_text(text)) == clean_text(super(type(decoder), decoder).latex_to_text(text))

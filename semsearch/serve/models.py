"""Pydantic models of every JSON response: the CLI's `--json` shapes, so OpenAPI describes them exactly.

Each model mirrors one library `as_dict()`; `tests/test_serve.py` checks that their fields are
the same keys, so a field added to a result in the library fails that test until it is added
here (as an optional field, so older indexes and clients keep working).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from ..query import Filters
from .limits import MAX_FILTER_VALUES, MAX_K, MAX_QUERY_CHARS, MAX_REFS, MAX_TEXT_CHARS, MAX_THEME_K, MAX_THEMES


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HitOut(_Out):
    """One ranked paper (`Hit.as_dict()`). `score` is described by `score_kind`; higher is better."""

    rank: int = Field(ge=1)
    score: float = Field(description="what score_kind says; higher is better")
    score_kind: str = Field(description="cosine | bm25 | fused (search); cosine | related | svm | facet (similar)")
    match: Optional[bool] = Field(
        None, description="the paper's cosine with the query reaches the bar of a real match; None: not computed"
    )
    id: str
    title: Optional[str] = Field(description="None when no source gave a title (never invented)")
    display_title: str = Field(description="the title, or '[no title] ' and an abstract excerpt")
    arxiv_id: Optional[str]
    date: Optional[str] = Field(description="ISO date (YYYY, YYYY-MM or YYYY-MM-DD) when known")
    authors: list[str]
    url: Optional[str] = Field(None, description="the arXiv abstract page, else the DOI link")
    abstract: str
    versions: int = Field(ge=1, description="distinct abstract texts merged into this paper")
    sources: list[str] = Field(description="file:line of every place the paper was read")


class ExcludedOut(_Out):
    """A paper `similar` left out, and why (`Excluded.as_dict()`)."""

    id: str
    title: Optional[str]
    display_title: str
    reason: str
    containment: Optional[float] = Field(description="3-gram containment of a pasted text, None for the reference")


class SimilarOut(_Out):
    """`similar --json`: the hits, the papers left out, and any fallback taken (notes)."""

    hits: list[HitOut]
    excluded: list[ExcludedOut]
    notes: list[str] = Field(default_factory=list)


class ThemePaperOut(_Out):
    id: str
    title: Optional[str]
    score: float = Field(description="cosine of paper and theme (named) or cluster centre (discovered)")


class ThemeOut(_Out):
    name: str
    papers: list[ThemePaperOut]
    description: Optional[str] = None
    words: Optional[list[str]] = Field(None, description="discovered themes: their most distinctive words")


class UnassignedOut(_Out):
    id: str
    title: Optional[str]


class ThemesOut(_Out):
    """`themes --json`: each theme's papers (multi-label for named themes) and the unassigned ones."""

    themes: list[ThemeOut]
    unassigned: list[UnassignedOut]
    method: str


class PaperOut(_Out):
    """A paper record (`semsearch papers --json`), with the text of every version."""

    id: str
    title: Optional[str]
    display_title: str
    arxiv_id: Optional[str]
    aliases: list[str] = Field(default_factory=list, description="ids of records merged into it, former ids")
    date: Optional[str]
    authors: list[str]
    categories: list[str]
    url: Optional[str] = Field(None, description="the arXiv abstract page, else the DOI link")
    field_sources: dict[str, Optional[str]] = Field(
        default_factory=dict, description="per field: 'input', 'SERVICE:REF' when `enrich` filled it, or None"
    )
    sources: list[str]
    versions: int = Field(ge=1)
    abstract: str = Field(description="the primary (longest) version")
    version_texts: list[str] = Field(description="every distinct abstract text, primary first")


class InfoOut(_Out):
    """`semsearch info --json`: model, dimension, count, index type and sizes on disk."""

    path: str
    model: str
    model_fingerprint: str
    dim: int
    count: int
    retired_rows: int
    metric: str
    index_type: str
    index_params: dict[str, Any]
    index_recall_at_10: Optional[float]
    text: str
    corpus_hash: str
    created: str
    format_version: int
    semsearch_version: str
    files: dict[str, int]
    bytes: int
    build: dict[str, Any]


class ErrorOut(_Out):
    """Every error: one line saying what is wrong and how to fix it."""

    error: str


# --- request parameters: query-string models; an unknown parameter is refused (extra="forbid") ---


#: Not only ASCII white space. Written out because `\S` differs between JSON Schema's ECMA regexes,
#: pydantic's Rust ones and Python's (U+0085, U+FEFF); text of Unicode spaces only is the library's
#: "empty query" (400).
SOME_TEXT = r"[^ \t\n\r\f\v]"
#: A query, a reference, a theme.
Text = Annotated[str, StringConstraints(min_length=1, max_length=MAX_QUERY_CHARS, pattern=SOME_TEXT)]
PastedText = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT_CHARS, pattern=SOME_TEXT)]
FilterValue = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Mode = Literal["dense", "lexical", "hybrid"]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NoParams(_Params):
    """No query parameters: any given is refused."""


class FilterParams(_Params):
    """Restrict to papers by year, category or source before ranking (several values: any of them)."""

    year_from: Optional[int] = Field(None, ge=0, le=9999, description="only papers from this year on")
    year_to: Optional[int] = Field(None, ge=0, le=9999, description="only papers up to this year")
    category: list[FilterValue] = Field(
        default_factory=list, max_length=MAX_FILTER_VALUES, description="only papers with this category (repeat: any)"
    )
    source: list[FilterValue] = Field(
        default_factory=list, max_length=MAX_FILTER_VALUES,
        description="only papers read from a source whose path contains this (repeat: any)",
    )
    author: list[FilterValue] = Field(
        default_factory=list, max_length=MAX_FILTER_VALUES,
        description="only papers with an author whose name contains this, any case (repeat: any)",
    )

    def filters(self) -> Filters:
        return Filters(self.year_from, self.year_to, tuple(self.source), tuple(self.category), tuple(self.author))


class SearchParams(FilterParams):
    q: Text = Field(description="what to look for, in plain words")
    k: int = Field(10, ge=1, le=MAX_K, description="number of results")
    mode: Optional[Mode] = Field(None, description="dense | lexical | hybrid (default hybrid)")
    diverse: bool = Field(False, description="re-rank for diversity (MMR)")


class _FormParams(FilterParams):
    """A page's form: a field left empty (`year_from=`) is a field not given."""

    @model_validator(mode="before")
    @classmethod
    def _empty_is_absent(cls, data):
        if not isinstance(data, dict):
            return data
        out = {}
        for key, value in data.items():
            if isinstance(value, list):
                value = [v for v in value if v != ""]
            if value != "":
                out[key] = value
        return out


class SearchPageParams(_FormParams):
    q: Optional[Annotated[str, StringConstraints(max_length=MAX_QUERY_CHARS)]] = None
    k: int = Field(10, ge=1, le=MAX_K)
    mode: Optional[Mode] = None
    diverse: bool = False


Facet = Literal["background", "method", "result"]


class SimilarParams(FilterParams):
    ref: list[Text] = Field(
        default_factory=list, max_length=MAX_REFS,
        description="paper id, arXiv id or title; repeat for papers like several (a linear SVM ranks them)",
    )
    unlike: list[Text] = Field(
        default_factory=list, max_length=MAX_REFS, description="a paper to steer away from (repeat); needs ref"
    )
    facet: Optional[Facet] = Field(
        None, description="compare the sentences playing this role (one ref); the first call embeds sentences"
    )
    text: Optional[PastedText] = Field(None, description="a pasted abstract instead of ref")
    k: int = Field(10, ge=1, le=MAX_K, description="number of results")
    diverse: bool = Field(False, description="re-rank for diversity (MMR)")


class ThemesParams(FilterParams):
    theme: list[Text] = Field(
        default_factory=list, max_length=MAX_THEMES, description="a theme: NAME or 'NAME: description' (repeat)"
    )
    auto: bool = Field(False, description="discover themes by clustering instead of naming them")
    n: Optional[int] = Field(None, ge=1, le=MAX_THEMES, description="number of discovered themes (default: automatic)")
    query: Optional[Text] = Field(None, description="group only this query's top k results")
    k: int = Field(50, ge=1, le=MAX_THEME_K, description="with query: how many results to group")
    mode: Optional[Mode] = Field(None, description="with query: how to rank its results")


class PaperPageParams(_FormParams):
    facet: Optional[Facet] = None


class ThemesPageParams(_FormParams):
    themes: Optional[Annotated[str, StringConstraints(max_length=MAX_THEMES * (MAX_QUERY_CHARS + 1))]] = Field(
        None, description="themes, one a line"
    )
    auto: bool = False
    n: Optional[int] = Field(None, ge=1, le=MAX_THEMES)
    query: Optional[Annotated[str, StringConstraints(max_length=MAX_QUERY_CHARS)]] = None
    k: int = Field(50, ge=1, le=MAX_THEME_K)

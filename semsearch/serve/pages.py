"""What the pages show beyond the library's results: links out, the theme map, the API reference.

Plain data for the templates (which escape every string); nothing here writes HTML.
"""

from __future__ import annotations

from urllib.parse import quote

#: Tableau 10: distinct at a glance, readable on white; themes past ten reuse them in order.
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
           "#bab0ac")
UNASSIGNED = "#c9c9c9"


def links(paper, url: str | None) -> list[tuple[str, str]]:
    """(label, URL) to open a paper: its arXiv page and PDF, else `url` (the library's: a DOI link).
    Only http(s) links are made, whatever a corpus holds."""
    if paper.arxiv_id:
        aid = quote(paper.arxiv_id, safe="/.")
        return [("arXiv", f"https://arxiv.org/abs/{aid}"), ("PDF", f"https://arxiv.org/pdf/{aid}")]
    if url and url.startswith(("https://", "http://")):
        return [("DOI" if url.startswith("https://doi.org/") else "Open", url)]
    return []


def short_authors(authors, n: int = 3) -> str:
    authors = list(authors)
    return ", ".join(authors[:n]) + (" et al." if len(authors) > n else "")


def excerpt(text: str, n: int = 320) -> str:
    return text if len(text) <= n else text[: n - 1].rsplit(" ", 1)[0] + "…"


def theme_map(groups, width: int = 640, height: int = 400, pad: int = 14) -> dict:
    """The papers' 2-D PCA coordinates (`ThemeGroups.coordinates()`) scaled to an SVG box, each
    point coloured by the paper's best theme (grey: unassigned)."""
    coords = groups.coordinates()
    best: dict[str, tuple[float, int]] = {}
    for j, theme in enumerate(groups.themes):
        for m in theme.papers:
            if m.paper.id not in best or m.score > best[m.paper.id][0]:
                best[m.paper.id] = (m.score, j)
    xs, ys = coords[:, 0], coords[:, 1]

    def scale(v, lo, hi, size):
        return pad + (float(v) - lo) / (hi - lo) * (size - 2 * pad) if hi > lo else size / 2

    points = []
    for i, paper in enumerate(groups.papers):
        j = best.get(paper.id, (None, None))[1]
        points.append({
            "x": round(scale(xs[i], xs.min(), xs.max(), width), 1),
            "y": round(height - scale(ys[i], ys.min(), ys.max(), height), 1),
            "color": UNASSIGNED if j is None else PALETTE[j % len(PALETTE)],
            "theme": "unassigned" if j is None else groups.themes[j].name,
            "id": paper.id,
            "title": paper.display_title(),
        })
    legend = [{"name": t.name, "color": PALETTE[j % len(PALETTE)], "count": sum(p["theme"] == t.name for p in points)}
              for j, t in enumerate(groups.themes)]
    if groups.unassigned:
        legend.append({"name": "unassigned", "color": UNASSIGNED, "count": len(groups.unassigned)})
    return {"width": width, "height": height, "points": points, "legend": legend}


def api_reference(spec: dict) -> dict:
    """The OpenAPI document as rows for the offline /docs page: operations and schemas."""
    schemas = spec.get("components", {}).get("schemas", {})
    operations = []
    for path, methods in spec.get("paths", {}).items():
        for method, op in methods.items():
            params = [{
                "name": p["name"], "where": p["in"], "required": p.get("required", False),
                "type": schema_type(p.get("schema", {})), "limits": limits(p.get("schema", {})),
                "description": p.get("description") or p.get("schema", {}).get("description", ""),
            } for p in op.get("parameters", [])]
            responses = [{
                "code": code, "description": r.get("description", ""),
                "type": schema_type(r.get("content", {}).get("application/json", {}).get("schema", {})),
            } for code, r in op.get("responses", {}).items()]
            operations.append({"method": method.upper(), "path": path, "summary": op.get("summary", ""),
                               "description": op.get("description", ""), "params": params, "responses": responses})
    models = []
    for name, s in schemas.items():
        if name in ("HTTPValidationError", "ValidationError"):
            continue  # FastAPI's default 422 body, replaced here by ErrorOut
        required = set(s.get("required", ()))
        fields = [{"name": f, "type": schema_type(fs), "required": f in required, "limits": limits(fs),
                   "description": fs.get("description", "")} for f, fs in s.get("properties", {}).items()]
        models.append({"name": name, "description": s.get("description", ""), "fields": fields})
    return {"title": spec.get("info", {}).get("title", ""), "version": spec.get("info", {}).get("version", ""),
            "operations": operations, "schemas": models}


def schema_type(s: dict) -> str:
    """A JSON schema as a short type: `list[HitOut]`, `int | null`, `"dense" | "lexical"`."""
    if not s:
        return ""
    if "$ref" in s:
        return s["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in s:
        return " | ".join(schema_type(x) for x in s["anyOf"])
    if "enum" in s:
        return " | ".join(f'"{v}"' for v in s["enum"])
    if s.get("type") == "array":
        return f"list[{schema_type(s.get('items', {}))}]"
    if s.get("type") == "object" and "additionalProperties" in s:
        inner = s["additionalProperties"]
        return f"dict[str, {schema_type(inner) if isinstance(inner, dict) and inner else 'any'}]"
    return str(s.get("type", "any"))


def limits(s: dict) -> str:
    """A schema's bounds in words: `1 ≤ value ≤ 100`, `≤ 1000 chars`, `≤ 20 items`."""
    parts = []
    for alt in s.get("anyOf", [s]):
        if "minimum" in alt and "maximum" in alt:
            parts.append(f"{alt['minimum']}–{alt['maximum']}")
        elif "minimum" in alt or "maximum" in alt:
            parts.append(f"≥ {alt['minimum']}" if "minimum" in alt else f"≤ {alt['maximum']}")
        if "maxLength" in alt:
            parts.append(f"{alt.get('minLength', 0)}–{alt['maxLength']} chars")
        if "maxItems" in alt:
            parts.append(f"≤ {alt['maxItems']} items")
            parts.append(limits(alt.get("items", {})))
    if "default" in s and s["default"] not in (None, []):
        parts.append(f"default {s['default']}")
    return "; ".join(p for p in parts if p)

"""Bounds on what one request may ask of a served index, shared by the web app and the MCP server.

They keep every answer small and quick: a request past a bound is refused with a one-line
message (HTTP 422), never cut short silently.
"""

#: Results per search or related-paper request.
MAX_K = 100
#: Papers grouped into themes for one query.
MAX_THEME_K = 500
#: Characters in a query, a paper reference or a theme.
MAX_QUERY_CHARS = 1000
#: Characters in a pasted abstract (`similar` by text).
MAX_TEXT_CHARS = 10_000
#: Characters in a paper id.
MAX_ID_CHARS = 300
#: Named themes in one request; discovered themes in one request.
MAX_THEMES = 20
#: Papers given to `similar` (like these, or unlike these).
MAX_REFS = 20
#: Filter values (categories, sources) in one request.
MAX_FILTER_VALUES = 20
#: Themes over the whole corpus (no query) only up to this many papers; beyond it, give a query.
MAX_GROUP_PAPERS = 5_000
#: Related papers shown on a paper page.
RELATED_K = 10

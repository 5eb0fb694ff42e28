"""Three fixes to the HTML that Jupyter Book 1.x writes, found by the browser test
(tests/test_browser.py): no console error on any page, every anchor resolves.

- Some inline scripts (sphinx-thebe's configuration, sphinx-togglebutton's selector) reach a
  page twice, and the second ``const THEBE_JS_URL`` is a syntax error. The copies are not in
  the page context's script list, so they are removed from the written pages: a later identical
  inline ``<script>`` line in a page's head is dropped.
- pydata-sphinx-theme logs "invalid theme mode" when no default mode is set: the book says light.
- An incremental build re-reads only the pages that changed, so a citation new to one chapter
  linked to an entry that the (unchanged) bibliography page did not have yet: the page holding
  the bibliography is re-read whenever any page is.
"""

from __future__ import annotations

import re
from pathlib import Path

_INLINE_SCRIPT = re.compile(r"^\s*<script>.*</script>\s*$")


def _light_mode(app, config) -> None:
    # pydata-sphinx-theme's templates read default_mode from the page context.
    config.html_context.setdefault("default_mode", "light")


def drop_repeated_inline_scripts(html: str) -> str:
    """``html`` without the second and later copies of an identical one-line inline script in
    its head (scripts with a ``src`` and everything after ``</head>`` are left alone)."""
    head, sep, body = html.partition("</head>")
    if not sep:
        return html
    seen, kept = set(), []
    for line in head.splitlines(keepends=True):
        if _INLINE_SCRIPT.match(line):
            if line.strip() in seen:
                continue
            seen.add(line.strip())
        kept.append(line)
    return "".join(kept) + sep + body


def _bibliography_pages(app, env, added, changed, removed) -> list[str]:
    if not (added or changed or removed):
        return []
    return [
        doc
        for doc in env.found_docs
        if doc not in added | changed
        and "{bibliography}" in Path(env.doc2path(doc)).read_text(encoding="utf-8")
    ]


def _fix_pages(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    for page in Path(app.outdir).rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        fixed = drop_repeated_inline_scripts(text)
        if fixed != text:
            page.write_text(fixed, encoding="utf-8")


def setup(app):
    app.connect("config-inited", _light_mode)
    app.connect("build-finished", _fix_pages)
    app.connect("env-get-outdated", _bibliography_pages)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

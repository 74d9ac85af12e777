"""One self-contained HTML page: every figure inline as a base64 PNG, tables as HTML, no network.

The page loads nothing: no script, no stylesheet link, no remote font; a
reader can mail it or open it offline and sees everything.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from spectro.utils.files import write_text

__all__ = ["Section", "html_table", "png_uri", "render_html", "write_html"]

_STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d1d1f; margin: 2em auto;
       max-width: 1300px; padding: 0 1.5em; background: #fff; }
h1 { font-size: 1.6em; margin-bottom: .2em; } h2 { font-size: 1.25em; margin-top: 1.8em; border-bottom: 1px solid #ddd; }
.verdict { font-size: 1.1em; background: #f3f6fb; border-left: 4px solid #3b6fb6; padding: .6em 1em; }
table { border-collapse: collapse; margin: .6em 0; font-size: .92em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: right; } th { background: #f0f0f0; }
td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; height: auto; border: 1px solid #eee; }
p.note { color: #555; font-size: .92em; }
"""


@dataclass
class Section:
    """A heading, a paragraph of explanation, and HTML blocks (tables) and figures (PNG bytes)."""

    heading: str
    text: str = ""
    tables: Sequence[str] = ()
    figures: Sequence[tuple[str, bytes]] = ()  # (alt text, PNG bytes)


def png_uri(png: bytes) -> str:
    """A ``data:image/png;base64,...`` URI of PNG bytes."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def html_table(table: pd.DataFrame, *, digits: int = 3) -> str:
    """A DataFrame as an HTML table (cells escaped, floats to ``digits`` places, no index)."""
    return table.to_html(index=False, escape=True, na_rep="-", float_format=lambda v: f"{v:.{digits}f}",
                         border=0)


def render_html(*, title: str, verdict: str, sections: Sequence[Section], footer: str = "") -> str:
    """The whole page as a string."""
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{html.escape(title)}</title>", f"<style>{_STYLE}</style>", "</head>", "<body>",
             f"<h1>{html.escape(title)}</h1>"]
    if verdict:
        parts.append(f'<p class="verdict">{html.escape(verdict)}</p>')
    for s in sections:
        parts.append(f"<h2>{html.escape(s.heading)}</h2>")
        if s.text:
            parts.append(f'<p class="note">{html.escape(s.text)}</p>')
        parts.extend(s.tables)
        for alt, png in s.figures:
            parts.append(f'<figure><img alt="{html.escape(alt, quote=True)}" src="{png_uri(png)}"></figure>')
    if footer:
        parts.append(f'<p class="note">{html.escape(footer)}</p>')
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"


def write_html(path: str, **page: object) -> str:
    """Write :func:`render_html`'s page to ``path`` atomically; return the path."""
    write_text(path, render_html(**page))  # type: ignore[arg-type]
    return path

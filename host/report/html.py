"""HTML building blocks of the report: every text escaped, every image inline.

Each function takes plain text (and numbers) and returns an HTML fragment; text is
escaped where it is inserted, so run data (a URL with ``&``, a benchmark's table) can
never become markup. Images are embedded as ``data:`` URIs and the style sheet is inline,
so the page needs nothing but itself: it can be mailed, archived or opened offline.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

GENERATOR = "hilt report"
"""Named in every page (its generator meta tag) and plot (its PNG Software field), so that
a later report knows which files an earlier one wrote."""

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 2em; }
h3 { margin-top: 1.5em; }
nav a { margin-right: 1em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; }
caption { text-align: left; font-weight: 600; padding: 0.3em 0; white-space: nowrap; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f2f2f2; }
td.text, th.text { text-align: left; }
tr.highlight td { background: #fff3d6; font-weight: 600; }
table.meta td, table.meta th { text-align: left; vertical-align: top; }
div.wide { overflow-x: auto; }
div.row { display: flex; flex-wrap: wrap; gap: 0 2em; align-items: flex-start; }
figure { margin: 1em 0; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.9em; color: #555; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
p.note { color: #555; font-style: italic; }
p.verdict { font-weight: 600; }
p.verdict.bad { color: #b00020; }
footer { margin-top: 3em; font-size: 0.85em; color: #777; }
"""


@dataclass(frozen=True)
class Image:
    """A PNG: the file name it is written under beside the page, and its bytes."""

    name: str
    data: bytes


@dataclass(frozen=True)
class Section:
    """One section of the page: its anchor, its title and its HTML body."""

    anchor: str
    title: str
    body: str


def text(value: object) -> str:
    """``value`` as escaped text."""
    return escape(str(value))


def para(value: object, kind: str = "") -> str:
    """A paragraph of text; ``kind`` is its CSS class (``note``, ``verdict``)."""
    attribute = f' class="{escape(kind)}"' if kind else ""
    return f"<p{attribute}>{text(value)}</p>"


def pre(value: object) -> str:
    """A block of preformatted text (a benchmark's printed table)."""
    return f"<pre>{text(value)}</pre>"


def heading(value: object) -> str:
    """A sub-heading inside a section."""
    return f"<h3>{text(value)}</h3>"


def _number(value: object) -> bool:
    try:
        float(str(value).rstrip("%"))
    except ValueError:
        return str(value) in ("", "-")
    return True


def table(headers: Sequence[object], rows: Sequence[Sequence[object]], *, caption: str = "",
          highlight: Sequence[bool] = ()) -> str:
    """A table of text cells: columns of numbers right-aligned, others left-aligned;
    rows whose ``highlight`` is true stand out."""
    texts = {column for row in rows for column, value in enumerate(row) if not _number(value)}

    def cell(tag: str, column: int, value: object) -> str:
        kind = ' class="text"' if column in texts else ""
        return f"<{tag}{kind}>{text(value)}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(headers))
    body = []
    for index, row in enumerate(rows):
        mark = ' class="highlight"' if index < len(highlight) and highlight[index] else ""
        body.append(f"<tr{mark}>" + "".join(cell("td", i, v) for i, v in enumerate(row))
                    + "</tr>")
    title = f"<caption>{text(caption)}</caption>" if caption else ""
    return (f'<div class="wide"><table>{title}<thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>")


def row(*fragments: str) -> str:
    """Fragments (tables) side by side, wrapping when the page is narrow."""
    return f'<div class="row">{"".join(fragments)}</div>'


def meta_table(items: Sequence[tuple[str, object]]) -> str:
    """A two-column table of names and values (the run's header)."""
    rows = "".join(f"<tr><th>{text(name)}</th><td>{text(value)}</td></tr>"
                   for name, value in items)
    return f'<table class="meta"><tbody>{rows}</tbody></table>'


def figure(image: Image, caption: str) -> str:
    """``image`` inline as a data URI, with its caption (also its alt text)."""
    uri = "data:image/png;base64," + base64.b64encode(image.data).decode("ascii")
    return (f'<figure><img src="{uri}" alt="{text(caption)}" data-file="{text(image.name)}">'
            f"<figcaption>{text(caption)}</figcaption></figure>")


def page(title: str, header: str, sections: Sequence[Section], footer: str) -> str:
    """The whole document: title, header, a table of contents, the sections, a footer."""
    contents = "".join(f'<a href="#{text(s.anchor)}">{text(s.title)}</a>' for s in sections)
    body = "".join(f'<section id="{text(s.anchor)}"><h2>{text(s.title)}</h2>{s.body}'
                   f"</section>" for s in sections)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="generator" content="{GENERATOR}">'
            f"<title>{text(title)}</title><style>{STYLE}</style></head><body>"
            f"<h1>{text(title)}</h1>{header}<nav>{contents}</nav>{body}"
            f"<footer>{text(footer)}</footer></body></html>\n")

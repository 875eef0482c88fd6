"""Self-contained HTML pages: no external scripts, fonts or stylesheets.

A :class:`Page` is a title and a list of :class:`Section` objects, each made of
HTML fragments produced by the helpers here (:func:`table`, :func:`pre`,
:func:`badge`, :func:`figure`). Every piece of user text is escaped. Images are
embedded as base64 PNG so the page opens offline from a single file.
"""

from __future__ import annotations

import base64
import html
import io
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from neuroai.io.atomic import atomic_open

NATURE_COLOURS = {
    "real": "#1b7837",
    "derived": "#2166ac",
    "semi-synthetic": "#b35806",
    "simulated": "#762a83",
}

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
margin:0;color:#1a1a1a;background:#fafafa;line-height:1.45}
header{background:#17324d;color:#fff;padding:1.2rem 2rem}
header h1{margin:0;font-size:1.6rem}
header p{margin:.3rem 0 0;opacity:.85}
nav{background:#e8eef4;padding:.5rem 2rem;position:sticky;top:0;font-size:.92rem}
nav a{margin-right:1.1rem;color:#17324d;text-decoration:none}
nav .site{padding-bottom:.35rem;margin-bottom:.35rem;border-bottom:1px solid #cfd8e3}
nav .site a{font-weight:600}
nav .site a.current{text-decoration:underline}
details{margin:.5rem 0}
summary{cursor:pointer;color:#17324d}
.flag{color:#b2182b;font-weight:600}
main{padding:1rem 2rem 3rem;max-width:1200px}
section{background:#fff;border:1px solid #dde3ea;border-radius:6px;padding:1rem 1.4rem;margin:1.2rem 0}
h2{margin-top:.2rem;color:#17324d}
table{border-collapse:collapse;font-size:.88rem;margin:.6rem 0}
th,td{border:1px solid #d0d7de;padding:.28rem .55rem;text-align:left;vertical-align:top}
th{background:#f0f3f6}
pre{background:#f6f8fa;border:1px solid #d0d7de;padding:.7rem;overflow:auto;font-size:.82rem}
.badge{display:inline-block;padding:.05rem .5rem;border-radius:1rem;color:#fff;font-size:.8rem}
figure{margin:.8rem 0}
figure img{max-width:100%;border:1px solid #e1e4e8}
figcaption{font-size:.85rem;color:#555}
.note{color:#555;font-size:.9rem}
"""


@dataclass
class Section:
    """One section of a page.

    Attributes
    ----------
    id : str
        Anchor name (letters, digits, dashes).
    title : str
        Heading.
    parts : list of str
        HTML fragments, already escaped (made with this module's helpers).
    page : tuple of (str, str) | None
        ``(slug, title)`` of the report page the section belongs on, where the
        renderer decides (a dataset's QC goes on that dataset's page); ``None``
        leaves it to the report's page plan.
    """

    id: str
    title: str
    parts: list[str] = field(default_factory=list)
    page: tuple[str, str] | None = None

    def add(self, *fragments: str) -> Section:
        self.parts.extend(fragments)
        return self


@dataclass
class Page:
    """A self-contained HTML page.

    Attributes
    ----------
    title, subtitle : str
        Header text.
    sections : list of Section
        The page's content, in order.
    links : list of (str, str)
        ``(href, label)`` of the report's pages, shown as a site menu; the one
        whose href is ``filename`` is marked as the current page.
    filename : str
        This page's file name inside the report folder.
    """

    title: str
    subtitle: str = ""
    sections: list[Section] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)
    filename: str = "index.html"

    def render(self) -> str:
        site = "".join(
            f'<a href="{html.escape(href)}"'
            + (' class="current" aria-current="page"' if href == self.filename else "")
            + f">{html.escape(label)}</a>"
            for href, label in self.links
        )
        anchors = "".join(
            f'<a href="#{html.escape(s.id)}">{html.escape(s.title)}</a>' for s in self.sections
        )
        nav = (
            f'<div class="site">{site}</div>' if site else ""
        ) + f'<div class="anchors">{anchors}</div>'
        body = "".join(
            f'<section id="{html.escape(s.id)}"><h2>{html.escape(s.title)}</h2>{"".join(s.parts)}</section>'
            for s in self.sections
        )
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(self.title)}</title><style>{_CSS}</style></head><body>"
            f"<header><h1>{html.escape(self.title)}</h1><p>{html.escape(self.subtitle)}</p></header>"
            f"<nav>{nav}</nav><main>{body}</main></body></html>\n"
        )

    def write(self, path: str | os.PathLike) -> Path:
        """Write the page atomically."""
        with atomic_open(path, "w") as handle:
            handle.write(self.render())
        return Path(path)


def text(value: object, *, tag: str = "p", cls: str | None = None) -> str:
    """An escaped paragraph (or other simple element)."""
    attr = f' class="{html.escape(cls)}"' if cls else ""
    return f"<{tag}{attr}>{html.escape(str(value))}</{tag}>"


def details(summary: str, *fragments: str, expanded: bool = False) -> str:
    """A collapsed block (``<details>``) the reader opens on demand.

    Parameters
    ----------
    summary : str
        The always-visible line (escaped here).
    *fragments : str
        HTML fragments shown when opened, already escaped.
    expanded : bool
        Start opened.
    """
    state = " open" if expanded else ""
    return (
        f"<details{state}><summary>{html.escape(summary)}</summary>{''.join(fragments)}</details>"
    )


def link(href: str, label: str) -> str:
    """A link to another page of the report (both escaped)."""
    return f'<a href="{html.escape(href)}">{html.escape(label)}</a>'


def flag(label: str) -> str:
    """A warning marker, for outliers in QC tables."""
    return f'<span class="flag">{html.escape(label)}</span>'


def flagged_table(
    rows: Sequence[Sequence[object]], reasons: Sequence[Sequence[str]], columns: Sequence[str]
) -> str:
    """A QC table whose last column says why each flagged row is flagged.

    Parameters
    ----------
    rows : sequence of sequences
        One row of (escaped on output) values per subject.
    reasons : sequence of sequences of str
        Per row, the reasons it is flagged (empty when it is not).
    columns : sequence of str
        Column names of ``rows``; a ``flag`` column is added.
    """
    cells = [
        (*row, flag("; ".join(why)) if why else "") for row, why in zip(rows, reasons, strict=True)
    ]
    return table(cells, [*columns, "flag"], raw_columns=[len(columns)])


def pre(value: str) -> str:
    """Preformatted, escaped text (configs, logs)."""
    return f"<pre>{html.escape(value)}</pre>"


def badge(label: str, colour: str | None = None) -> str:
    """A coloured pill; colours for data natures are built in."""
    colour = colour or NATURE_COLOURS.get(label, "#555")
    return (
        f'<span class="badge" style="background:{html.escape(colour)}">{html.escape(label)}</span>'
    )


def table(
    rows: Iterable[Sequence[object]],
    columns: Sequence[str],
    *,
    raw_columns: Iterable[int] = (),
) -> str:
    """An HTML table; cells are escaped except in ``raw_columns`` (trusted HTML)."""
    raw = set(raw_columns)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = []
    for row in rows:
        cells = "".join(
            f"<td>{cell if i in raw else html.escape('' if cell is None else str(cell))}</td>"
            for i, cell in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def figure(fig, *, caption: str = "", alt: str = "", dpi: int = 110) -> str:
    """Embed a matplotlib Figure as a base64 PNG with a caption."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(alt or caption)}">'
        f"{cap}</figure>"
    )

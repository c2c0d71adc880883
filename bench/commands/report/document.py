"""A tiny document model and its two renderings: Markdown and self-contained HTML.

The report is built once as a list of blocks (headings, paragraphs, tables, figures) and
rendered twice, so the Markdown and the HTML can never tell different stories. The HTML has
no external resource of any kind: styles inline, figures as data: URIs.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass

from bench.commands.report.plots import Plot


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Para:
    text: str


@dataclass(frozen=True)
class Table:
    headers: list[str]
    rows: list[list[str]]
    caption: str = ""


@dataclass(frozen=True)
class Figure:
    plot: Plot


Block = Heading | Para | Table | Figure


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(blocks: list[Block], plot_dir: str = "plots") -> str:
    """Markdown; figures refer to plot_dir/<name>.png, which the CLI writes beside it."""
    out: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            out.append(f"{'#' * block.level} {block.text}\n")
        elif isinstance(block, Para):
            out.append(block.text + "\n")
        elif isinstance(block, Table):
            out.append("| " + " | ".join(_md_cell(h) for h in block.headers) + " |")
            out.append("|" + "---|" * len(block.headers))
            out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
            out.append(f"\n{block.caption}\n" if block.caption else "")
        elif isinstance(block, Figure):
            p = block.plot
            if p.png is None:
                out.append(f"*{p.title}: not drawn. {p.note}*\n")
            else:
                out.append(f"![{p.title}]({plot_dir}/{p.name}.png)\n")
                if p.note:
                    out.append(f"*{p.note}*\n")
    return "\n".join(out).rstrip() + "\n"


STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.2em;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f3f3f3} td.n{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:1em 0} figcaption{font-size:13px;color:#555}
img{max-width:100%} .note{color:#666;font-style:italic;font-size:13px}
"""


def _numeric(text: str) -> bool:
    return bool(text) and (text[0].isdigit() or text[0] in "+-") and not text.isalpha()


def render_html(blocks: list[Block], title: str) -> str:
    """One HTML file that needs nothing else: no scripts, no links, figures inline."""
    esc = html.escape
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>",
    ]
    for block in blocks:
        if isinstance(block, Heading):
            out.append(f"<h{block.level}>{esc(block.text)}</h{block.level}>")
        elif isinstance(block, Para):
            out.append(f"<p>{esc(block.text)}</p>")
        elif isinstance(block, Table):
            out.append("<table><thead><tr>")
            out += [f"<th>{esc(h)}</th>" for h in block.headers]
            out.append("</tr></thead><tbody>")
            for row in block.rows:
                cells = [
                    f'<td class="n">{esc(c)}</td>' if _numeric(c) else f"<td>{esc(c)}</td>"
                    for c in row
                ]
                out.append("<tr>" + "".join(cells) + "</tr>")
            out.append("</tbody></table>")
            if block.caption:
                out.append(f'<p class="note">{esc(block.caption)}</p>')
        elif isinstance(block, Figure):
            p = block.plot
            if p.png is None:
                out.append(f'<p class="note">{esc(p.title)}: not drawn. {esc(p.note)}</p>')
                continue
            data = base64.b64encode(p.png).decode("ascii")
            out.append(
                f'<figure id="plot-{esc(p.name)}"><img alt="{esc(p.title)}" '
                f'src="data:image/png;base64,{data}"><figcaption>{esc(p.title)}'
                + (f". {esc(p.note)}" if p.note else "")
                + "</figcaption></figure>"
            )
    out.append("</body></html>")
    return "\n".join(out) + "\n"

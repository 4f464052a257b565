"""Minimal self-contained HTML reports (no JavaScript, no external assets)."""

from __future__ import annotations

import html
from pathlib import Path

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;background:#fafafa;color:#222}
h1{font-size:1.5rem} h2{font-size:1.2rem;margin-top:2rem}
.row{display:flex;flex-wrap:wrap;gap:.75rem;align-items:flex-start}
.col{display:flex;flex-direction:column;gap:.75rem}
figure{margin:0;background:#fff;border:1px solid #ddd;padding:.4rem}
figcaption{font-size:.8rem;color:#555;max-width:22rem}
img{image-rendering:pixelated;display:block}
table{border-collapse:collapse;font-size:.85rem} td,th{border:1px solid #ccc;padding:.2rem .5rem;text-align:right}
th{background:#eee}
"""


class HtmlReport:
    """Accumulates sections of figures and tables, then writes one HTML file."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.parts: list[str] = []

    def heading(self, text: str, level: int = 2) -> None:
        self.parts.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def paragraph(self, text: str) -> None:
        self.parts.append(f"<p>{html.escape(text)}</p>")

    @staticmethod
    def figure_html(src: str, caption: str, width: int | None = None) -> str:
        """One image with its caption (for :meth:`row`)."""
        w = f' width="{int(width)}"' if width else ""
        return (f'<figure><img src="{html.escape(src)}"{w} alt="{html.escape(caption)}">'
                f"<figcaption>{html.escape(caption)}</figcaption></figure>")

    @staticmethod
    def video_html(src: str, caption: str, width: int | None = None) -> str:
        """One video (with its sound track) and its caption (for :meth:`row`)."""
        w = f' width="{int(width)}"' if width else ""
        return (f'<figure><video controls preload="metadata" src="{html.escape(src)}"{w}></video>'
                f'<figcaption style="max-width:{int(width) if width else 352}px">{html.escape(caption)}'
                "</figcaption></figure>")

    def figures(self, items: list[tuple[str, str]], width: int | None = None) -> None:
        """A row of images: (relative path, caption) pairs."""
        self.parts.append(f'<div class="row">{"".join(self.figure_html(s, c, width) for s, c in items)}</div>')

    def video(self, src: str, caption: str, width: int | None = None) -> None:
        """An embedded video (with its sound track) from a path relative to the report."""
        self.parts.append(self.video_html(src, caption, width))

    def row(self, *columns: list[str]) -> None:
        """Columns side by side (wrapping on narrow screens); each column stacks its HTML parts."""
        cols = "".join(f'<div class="col">{"".join(parts)}</div>' for parts in columns)
        self.parts.append(f'<div class="row">{cols}</div>')

    def table(self, header: list[str], rows: list[list]) -> None:
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
        self.parts.append(f"<table><tr>{head}</tr>{body}</table>")

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        doc = (
            f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(self.title)}</title>"
            f"<style>{_STYLE}</style></head><body><h1>{html.escape(self.title)}</h1>"
            + "\n".join(self.parts)
            + "</body></html>"
        )
        path.write_text(doc, encoding="utf-8")
        return path

"""A report written once and rendered twice: Markdown beside its PNG files, and one
self-contained HTML page (plots inlined as data URIs, no script, no external asset)."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;"
    "color:#1b1b1b;background:#fff}table{border-collapse:collapse;margin:1em 0}"
    "th,td{border:1px solid #bbb;padding:.3em .6em;text-align:right}"
    "th:first-child,td:first-child{text-align:left}th{background:#eef}"
    "img{max-width:100%}p.note{color:#444}"
)


@dataclass
class Block:
    """A heading, paragraph, table or image."""

    kind: str
    text: str = ""
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)


@dataclass
class Document:
    """A titled report of blocks, with its images in ``folder``."""

    title: str
    folder: Path
    blocks: list[Block] = field(default_factory=list)

    def heading(self, text: str) -> None:
        """A second-level heading."""
        self.blocks.append(Block("heading", text))

    def paragraph(self, text: str) -> None:
        """Plain text (no markup)."""
        self.blocks.append(Block("paragraph", text))

    def table(self, header: list[str], rows: list[list[str]]) -> None:
        """A table of already formatted cells."""
        self.blocks.append(Block("table", header=header, rows=rows))

    def image(self, name: str, alt: str) -> None:
        """A PNG written to ``folder / name``."""
        self.blocks.append(Block("image", text=alt, header=[name]))

    def markdown(self) -> str:
        """The report as Markdown (images linked by file name)."""
        out = [f"# {self.title}", ""]
        for block in self.blocks:
            if block.kind == "heading":
                out += [f"## {block.text}", ""]
            elif block.kind == "paragraph":
                out += [block.text, ""]
            elif block.kind == "table":
                out += [_md_row(block.header), _md_row(["---"] * len(block.header))]
                out += [_md_row(row) for row in block.rows] + [""]
            elif (self.folder / block.header[0]).is_file():
                out += [f"![{block.text}]({block.header[0]})", ""]
        return "\n".join(out)

    def html(self) -> str:
        """The report as one HTML page with the images inlined."""
        body = [f"<h1>{html.escape(self.title)}</h1>"]
        for block in self.blocks:
            if block.kind == "heading":
                body.append(f"<h2>{html.escape(block.text)}</h2>")
            elif block.kind == "paragraph":
                body.append(f"<p>{html.escape(block.text)}</p>")
            elif block.kind == "table":
                body.append(_html_table(block.header, block.rows))
            else:
                body.append(self._html_image(block))
        return (
            '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(self.title)}</title><style>{STYLE}</style></head>"
            f"<body>{''.join(body)}</body></html>\n"
        )

    def _html_image(self, block: Block) -> str:
        path = self.folder / block.header[0]
        if not path.is_file():
            return ""
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        return f'<img src="data:image/png;base64,{data}" alt="{html.escape(block.text)}">'

    def write(self, stem: str = "report") -> None:
        """Write ``stem.md`` and ``stem.html`` into ``folder``."""
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / f"{stem}.md").write_text(self.markdown(), encoding="utf-8")
        (self.folder / f"{stem}.html").write_text(self.html(), encoding="utf-8")


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f'<th scope="col">{html.escape(h)}</th>' for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

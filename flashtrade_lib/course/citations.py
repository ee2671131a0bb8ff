"""Readable citations for the student release: JupyterLab shows ``{footcite}`key``` as raw text.

The book cites with MyST roles that only the book build resolves. In a released notebook each
``{footcite}`a,b``` becomes author–year text, "(Dao et al., 2022; Dao, 2024)", and the
``{footbibliography}`` block becomes the list of the works the notebook cites, from
``book/references.bib``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

_ENTRY = re.compile(r"@\w+\{(?P<key>[^,\s]+),(?P<body>.*?)\n\}", re.S)
_FIELD = re.compile(r"(?P<name>\w+)\s*=\s*\{(?P<value>(?:[^{}]|\{[^{}]*\})*)\}", re.S)
_CITE = re.compile(r"\{footcite[pt]?\}`(?P<keys>[^`]+)`")
_BIBLIOGRAPHY = re.compile(r"`{3,}\{footbibliography\}[^\n]*\n(?:.*?\n)?`{3,}", re.S)


def _plain(text: str) -> str:
    text = re.sub(r"\\['`^\"~]\{?(\w)\}?", r"\1", text)  # R{\'e} → Re (accents dropped: plain text)
    return re.sub(r"\s+", " ", text.replace("{", "").replace("}", "")).strip()


def read_bib(path: Path) -> dict[str, dict[str, str]]:
    """``{key: {field: value}}`` of a BibTeX file (the simple, one-level braces the book's file uses)."""
    return {m["key"]: {f["name"].lower(): _plain(f["value"]) for f in _FIELD.finditer(m["body"])}
            for m in _ENTRY.finditer(path.read_text())}


def author_year(entry: dict[str, str]) -> str:
    authors = [a.strip() for a in entry.get("author", "Anonymous").split(" and ")]
    surname = authors[0].split(",")[0].strip()
    names = surname if len(authors) == 1 else f"{surname} and {authors[1].split(',')[0].strip()}" \
        if len(authors) == 2 else f"{surname} et al."
    return f"{names}, {entry.get('year', 'n.d.')}"


def reference_line(entry: dict[str, str]) -> str:
    venue = entry.get("journal") or entry.get("booktitle") or entry.get("publisher") or entry.get("howpublished", "")
    return f"{author_year(entry)}. *{entry.get('title', '')}*." + (f" {venue}." if venue else "")


def readable(source: str, bib: dict[str, dict[str, str]], cited: list[str]) -> str:
    """A markdown cell with author–year citations; ``cited`` collects the keys, in order of first use."""
    def cite(match: re.Match[str]) -> str:
        keys = [k.strip() for k in match["keys"].split(",")]
        for key in keys:
            if key not in bib:
                raise KeyError(f"unknown citation key {key!r}: add it to book/references.bib")
            if key not in cited:
                cited.append(key)
        return "(" + "; ".join(author_year(bib[k]) for k in keys) + ")"

    def bibliography(_: re.Match[str]) -> str:
        return "\n".join(f"- {reference_line(bib[k])}" for k in cited)

    return _BIBLIOGRAPHY.sub(bibliography, _CITE.sub(cite, source))


def readable_cells(sources: Iterable[str], bib: dict[str, dict[str, str]]) -> list[str]:
    """Every markdown source of a notebook, in order, made readable (the bibliography lists what came before)."""
    cited: list[str] = []
    return [readable(s, bib, cited) for s in sources]

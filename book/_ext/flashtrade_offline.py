"""Sphinx extension: the book's offline assets, page layout and numbering.

* plotly.js from the installed plotly package, not a CDN. Notebooks emit plotly
  figures as ``text/html`` that expects a global ``Plotly`` (see
  book/ipython/…/00-flashtrade-build.py). This adds ``plotly.min.js`` — the copy shipped
  inside the plotly wheel, so its version always matches the Python side — as a normal
  (synchronous) script in the head of each page that draws a figure (only there: parsing its
  3.5 MB takes a browser about 1.5 s of CPU on every page load), and copies the file into
  ``_static`` when the build finishes. MathJax is served by ``sphinx-mathjax-offline``.
* ``static/plotly_fit.js``: plotly figures laid out for the width they are shown at (titles
  wrapped, legends below the plot in a narrow column).
* ``static/flashtrade.css`` and ``static/page_fit.js``: tables, code, titles and display
  math that fit the column (or scroll with a visible cue) on any screen; wrapped code lines
  with a hanging indent.
* ``static/search_rank.js``: search lists the chapters before the reference pages
  (glossary, notation, references) and each page once.
* Search from ``file://``: the browser blocks the requests Sphinx makes for result
  snippets there (one CORS error per result), so on ``file:`` pages the search lists
  results without snippets; served (``make serve``) it shows them.
* Numbers per chapter: exercises, theorems and figures in ``notebooks/NN_*`` are numbered
  ``NN.k`` ("Exercise 8.2"), as a course cites them; Sphinx would count them across the
  whole book because the table of contents is not numbered (chapter titles carry their
  own numbers, starting at 0).
* The same numbers in JupyterLab: jupyterlab-myst counts exercises and algorithms from 1 in
  each notebook, so every numbered exercise/theorem/algorithm carries the book's number as
  MyST's own ``:enumerator: 2.1`` option, stamped by ``scripts/number_lab.py``
  (:func:`lab_numbers`, :func:`stamp_lab_numbers`). Sphinx accepts the option
  (:func:`accept_lab_numbers`) and the build warns — so ``-W`` fails — when a stamped number
  differs from the one the book prints (:func:`check_lab_numbers`).
* The course guide's table of notebook run times says "ran"/"failed" in words and names
  chapters by title (myst-nb's ``{nb-exec-table}`` uses emoji that render as a missing
  glyph where no emoji font is installed, and raw document paths).
* The kernels that execute the notebooks talk to the build over IPC sockets in Jupyter's
  runtime folder (readable by this user only), not over TCP: ipykernel warns on every start
  of an unencrypted TCP kernel, and its own advice is IPC. jupyter_client's IPC socket path
  is relative by default, and a notebook's kernel runs in the notebook's folder while the
  build runs in the book's, so the path is made absolute (:func:`kernels_over_ipc`). The
  build's kernel clients also wait for each message in polls of at most a second
  (``flashtrade_lib.kernel_messages``): a client waiting out a cell's whole timeout on one poll
  can miss the message it waits for and hang (seen on chapter 2's widget cell, nbclient#312).
* Glossary links: the first use of each glossary term in a chapter links to the term
  (:class:`GlossaryLinks`).
* ``{grading-times}``: the course guide's time to grade one submission per chapter, read
  from the benchmark record ``grading_time`` (``benchmarks/grading_time.py``) with its
  provenance and quality verdict — a recorded number, never typed into the page.
"""

from __future__ import annotations

import re
import shutil
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from docutils import nodes
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.environment import BuildEnvironment
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

PLOTLY_JS = "plotly.min.js"
PLOTLY_DIV = "plotly-graph-div"  # the class of the <div> each figure draws into
STATIC = Path(__file__).parent / "static"
CHAPTER_DOC = re.compile(r"^notebooks/(\d+)_")
# DOCUMENTATION_OPTIONS is defined by documentation_options.js (priority 200).
NO_SNIPPETS_FROM_FILES = (
    "if (location.protocol === 'file:' && typeof DOCUMENTATION_OPTIONS !== 'undefined') "
    "{ DOCUMENTATION_OPTIONS.SHOW_SEARCH_SUMMARY = false; }"
)


def _plotly_js_path() -> Path:
    import plotly

    path = Path(plotly.__file__).parent / "package_data" / PLOTLY_JS
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: reinstall plotly (pip install plotly)")
    return path


def _copy_plotly(app: Sphinx, exc: Exception | None) -> None:
    if exc is None and app.builder.format == "html":
        static = Path(app.outdir) / "_static"
        static.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_plotly_js_path(), static / PLOTLY_JS)


def _add_static(app: Sphinx, config: Config) -> None:
    config.html_static_path.append(str(STATIC))


def number_per_chapter(app: Sphinx, env: BuildEnvironment) -> list[str]:
    """Renumber every enumerable item of a chapter page as (chapter, k), in page order.

    Runs after Sphinx's own numbering (``env-get-updated``, priority 900), which counts
    across the book; the pages are written afterwards, so titles and references agree.
    """
    for docname, by_type in env.toc_fignumbers.items():
        match = CHAPTER_DOC.match(docname)
        if match is None:
            continue
        chapter = int(match.group(1))
        for numbers in by_type.values():
            in_order = sorted(numbers, key=numbers.__getitem__)
            for k, node_id in enumerate(in_order, start=1):
                numbers[node_id] = (chapter, k)
    return []


# A numbered item's directive: its fence line (``{exercise}`` or ``{prf:algorithm}`` and a title)
# and the option lines under it (``:label: …``, ``:enumerator: …``).
_NUMBERED = re.compile(r"^(?P<fence>`{3,}|:{3,})\{(?P<kind>exercise|prf:(?P<prf>\w+))\}[^\n]*\n"
                       r"(?P<options>(?::[\w-]+:[^\n]*\n)*)", re.M)
_OPTION = re.compile(r"^:(?P<name>[\w-]+):[ \t]*(?P<value>[^\n]*)$", re.M)
LAB_COUNTS = "numbered from 1 by Lab"  # no :enumerator: and no :nonumber: — Lab numbers it 1, 2, … in the notebook


class LabNumber(NamedTuple):
    """One exercise, theorem, algorithm or proof of a chapter: the number the book prints and the one Lab shows."""

    cell: int
    kind: str  # the directive: "exercise", "prf:algorithm", "prf:proof", …
    counter: str | None  # Sphinx's counter ("exercise", "theorem", …); None where the book prints no number
    label: str | None
    book: str | None  # "2.1": chapter . position among the chapter's items of this counter
    lab: str | None  # its ``:enumerator:``, None with ``:nonumber:``, else LAB_COUNTS


def _counter(match: re.Match[str], options: dict[str, str]) -> str | None:
    """Sphinx's counter for a directive; None for one the book does not number (``prf:proof``, ``:nonumber:``)."""
    from sphinx_proof.directive import DEFAULT_REALTYP_TO_COUNTERTYP

    if "nonumber" in options:
        return None
    return "exercise" if match["prf"] is None else DEFAULT_REALTYP_TO_COUNTERTYP.get(match["prf"])


def _options(match: re.Match[str]) -> dict[str, str]:
    return {o["name"]: o["value"].strip() for o in _OPTION.finditer(match["options"])}


def lab_numbers(path: Path) -> list[LabNumber]:
    """Every exercise/``prf:`` directive of a chapter notebook, in page order, with the book's and Lab's numbers."""
    import nbformat

    chapter = CHAPTER_DOC.match(f"notebooks/{path.name}")
    counts: dict[str, int] = {}
    items = []
    for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
        if cell.cell_type != "markdown":
            continue
        for item in _NUMBERED.finditer(cell.source):
            options = _options(item)
            counter, book = _counter(item, options), None
            if counter is not None:
                if chapter is None:
                    raise ValueError(f"{path.name}: only chapters (notebooks/NN_name.ipynb) are numbered per "
                                     f"chapter; move the {item['kind']} into a chapter or give it :nonumber:")
                counts[counter] = counts.get(counter, 0) + 1
                book = f"{int(chapter[1])}.{counts[counter]}"
            lab = None if "nonumber" in options else options.get("enumerator", LAB_COUNTS)
            items.append(LabNumber(index, item["kind"], counter, options.get("label"), book, lab))
    return items


def stamp_lab_numbers(path: Path) -> bool:
    """Make Lab show the book's numbers; True if anything changed.

    A numbered item gets the book's number as its ``:enumerator:`` option (last, after
    ``:label:``); one the book does not number (``prf:proof``) gets ``:nonumber:``. Only those
    option lines change; running it again changes nothing.
    """
    import nbformat

    numbers = iter(lab_numbers(path))  # in page order, as the substitutions below

    def stamp(item: re.Match[str]) -> str:
        number = next(numbers)
        if number.lab == number.book:
            return item.group(0)
        options = [line for line in item["options"].splitlines(keepends=True) if not line.startswith(":enumerator:")]
        option = f":enumerator: {number.book}\n" if number.book else ":nonumber:\n"
        return item.group(0)[:item.start("options") - item.start()] + "".join(options) + option

    nb = nbformat.read(path, as_version=4)
    changed = False
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            new = _NUMBERED.sub(stamp, cell.source)
            changed |= new != cell.source
            cell.source = new
    if changed:
        nbformat.write(nb, path)
    return changed


def accept_lab_numbers() -> None:
    """Let sphinx-exercise and sphinx-proof directives take MyST's ``:enumerator:`` (and proofs ``:nonumber:``).

    docutils refuses an option a directive does not declare. The book's number comes from
    :func:`number_per_chapter` (and a proof is never numbered); :func:`check_lab_numbers`
    checks the options against it.
    """
    from docutils.parsers.rst import directives
    from sphinx_exercise.directive import ExerciseDirective
    from sphinx_proof.directive import ElementDirective, ProofDirective

    for cls in (ExerciseDirective, ElementDirective):  # the subclasses (exercise-start, prf:*) inherit it
        cls.option_spec = {**cls.option_spec, "enumerator": directives.unchanged_required}
    ProofDirective.option_spec = {**ProofDirective.option_spec, "nonumber": directives.flag}


def check_lab_numbers(app: Sphinx, env: BuildEnvironment) -> list[str]:
    """Warn where a chapter's number in Lab differs from the number the book prints (``-W``: the build fails)."""
    from sphinx_proof.directive import DEFAULT_REALTYP_TO_COUNTERTYP

    counters = {"exercise", *DEFAULT_REALTYP_TO_COUNTERTYP.values()}
    for docname, by_type in env.toc_fignumbers.items():
        source = Path(env.doc2path(docname))
        if CHAPTER_DOC.match(docname) is None or source.suffix != ".ipynb":
            continue
        items = lab_numbers(source)
        in_lab = {(n.counter or n.kind, n.label): n.lab for n in items}
        in_book = {(n.kind, n.label): None for n in items if n.counter is None}
        in_book |= {(c, label): ".".join(map(str, number))
                    for c in counters & by_type.keys() for label, number in by_type[c].items()}
        for key in sorted(in_lab.keys() | in_book.keys(), key=str):
            if in_lab.get(key, LAB_COUNTS) != in_book.get(key):
                logger.warning(f"{key[0]} {key[1]} shows as {in_lab.get(key) or 'unnumbered'} in JupyterLab but "
                               f"{in_book.get(key) or 'unnumbered'} in the book: run .venv/bin/python "
                               "scripts/number_lab.py", location=docname)
    return []


def _term_pattern(term: str) -> re.Pattern[str]:
    """How a glossary term is written in running text.

    "Basis point (bp)" is found as "basis point" or "bp"; a name with capitals inside or an
    acronym ("FlashAttention", "HBM", "RoPE") only as written; a plain word in any case and
    with a plural -s ("Lookback", "lookbacks").
    """
    name, _, short = term.partition(" (")
    forms = [name] + ([short.rstrip(")")] if short and " " not in short.rstrip(")") else [])
    parts = []
    for form in forms:
        if any(c.isupper() for c in form[1:]) or form.isupper():
            parts.append(re.escape(form))
        else:
            parts.append("(?i:" + re.escape(form).replace(r"\ ", r"[\s-]") + ")s?")
    return re.compile(r"(?<![\w-])(?:" + "|".join(parts) + r")(?![\w-])")


class GlossaryLinks(SphinxPostTransform):
    """The first use of each glossary term in a chapter links to its definition.

    Only running text counts: not titles, code, math, links, captions or cell outputs. The
    links are ``:term:`` references, resolved by Sphinx for HTML and LaTeX alike.
    """

    default_priority = 5  # before Sphinx resolves references (10)
    SKIP = (nodes.title, nodes.literal, nodes.literal_block, nodes.math, nodes.math_block,
            nodes.reference, nodes.raw, nodes.caption, nodes.rubric, addnodes.pending_xref,
            addnodes.desc_signature, nodes.term, nodes.FixedTextElement)

    def run(self, **kwargs: object) -> None:
        if CHAPTER_DOC.match(self.env.docname) is None:
            return
        terms = [name for (kind, name) in self.env.get_domain("std").objects if kind == "term"]
        wanted = {name: _term_pattern(name) for name in terms}
        for text in list(self.document.findall(nodes.Text)):
            if not wanted:
                break
            if self._skipped(text):
                continue
            while text is not None:  # the earliest term in the text first, then the rest of it
                found = [(m.start(), name, m) for name, p in wanted.items() if (m := p.search(text.astext()))]
                if not found:
                    break
                _, name, match = min(found, key=lambda f: f[0])
                del wanted[name]
                text = self._link(text, match, name)

    def _skipped(self, text: nodes.Text) -> bool:
        node = text.parent
        while node is not None:
            if isinstance(node, self.SKIP) or "cell_output" in node.get("classes", []):
                return True
            node = node.parent
        return False

    @staticmethod
    def _link(text: nodes.Text, match: re.Match[str], name: str) -> nodes.Text | None:
        """Replace ``text`` by before + link + after; return the after part (to search on)."""
        whole = text.astext()
        ref = addnodes.pending_xref("", refdomain="std", reftype="term", reftarget=name.lower(),
                                    refexplicit=True, refwarn=True)
        ref += nodes.inline(match.group(0), match.group(0), classes=["xref", "std", "std-term"])
        after = nodes.Text(whole[match.end():]) if match.end() < len(whole) else None
        pieces = [nodes.Text(whole[:match.start()])] if match.start() else []
        pieces.append(ref)
        if after is not None:
            pieces.append(after)
        text.parent.replace(text, pieces)
        return after


class ExecutionTableInWords(SphinxPostTransform):
    """Replace myst-nb's ``{nb-exec-table}`` placeholder with a table in words."""

    default_priority = 7  # before myst-nb's own replacement (8)

    def run(self, **kwargs: object) -> None:
        from myst_nb.ext.execution_tables import ExecutionStatsNode
        from myst_nb.sphinx_ import NbMetadataCollector

        for node in list(self.document.findall(ExecutionStatsNode)):
            node.replace_self(self._table(NbMetadataCollector.get_doc_data(self.env)))

    def _table(self, metadata: dict) -> nodes.table:
        header = ["Chapter", "Run time (s)", "Result", "Executed"]
        rows = []
        for docname in sorted(metadata):
            data = metadata[docname].get("exec_data")
            if not data:
                continue
            link = addnodes.pending_xref(
                refdoc=self.env.docname, reftarget="/" + docname, reftype="doc", refdomain="std",
                refexplicit=False, refwarn=True,
            )
            link += nodes.inline(text=docname)
            runtime = data.get("runtime")
            when = data.get("mtime")
            rows.append([
                link,
                nodes.Text("–" if runtime is None else f"{runtime:.1f}"),
                nodes.Text("ran" if data.get("succeeded") is True else "failed"),
                nodes.Text(datetime.fromtimestamp(when).strftime("%Y-%m-%d %H:%M") if when else "–"),
            ])
        return _table(header, rows)


def _table(header: list[str], rows: list[list[nodes.Node]]) -> nodes.table:
    """A docutils table: one header row, then ``rows`` of inline nodes."""
    table = nodes.table(classes=["colwidths-auto"])
    group = nodes.tgroup(cols=len(header))
    table += group
    group += [nodes.colspec(colwidth=1) for _ in header]
    head, body = nodes.thead(), nodes.tbody()
    group += head
    group += body
    head += nodes.row("", *(nodes.entry("", nodes.paragraph(text=h)) for h in header))
    for cells in rows:
        body += nodes.row("", *(nodes.entry("", nodes.paragraph("", "", c)) for c in cells))
    return table


class GradingTimes(SphinxDirective):
    """``{grading-times}``: seconds to grade one submitted notebook, per chapter, from the record."""

    RECORD = "grading_time"

    def run(self) -> list[nodes.Node]:
        from flashtrade_lib.measure.bench import load_record, provenance, record_path, verdict

        self.env.note_dependency(str(record_path(self.RECORD)))
        record = load_record(self.RECORD)
        if record is None:
            return [nodes.paragraph(text=(
                "No recorded grading times in this checkout: run .venv/bin/python benchmarks/grading_time.py "
                "(a few minutes) and rebuild the book."))]
        by_chapter: dict[str, dict[str, dict]] = {}
        for row in record["rows"]:
            by_chapter.setdefault(row["chapter"], {})[row["submission"]] = row

        def cell(row: dict | None) -> nodes.Text:
            if row is None or row["seconds"] is None:
                return nodes.Text("–")
            return nodes.Text(f"{row['seconds']:.0f} s ({row['points']:g}/{row['exercises']} points)")

        rows = [[nodes.Text(chapter), nodes.Text(str(next(iter(subs.values()))["exercises"])),
                 cell(subs.get("reference")), cell(subs.get("typical-wrong"))]
                for chapter, subs in by_chapter.items()]
        table = _table(["Chapter", "Exercises", "Reference submission", "Typical mistakes"], rows)
        notes = [f"{provenance(record, packages=('numpy', 'torch', 'triton'))}.", verdict(record)]
        if not record.get("reference_gets_every_point", False):
            notes.append("The reference submission did not get every point: these are not times of complete runs.")
        return [table, *(nodes.paragraph(text=n) for n in notes)]


def _absolute_ipc_path(manager: object) -> str:
    """An IPC socket path for one kernel: absolute, so kernel and client agree whatever their folders."""
    import os
    import uuid

    from jupyter_client.localinterfaces import localhost
    from jupyter_core.paths import jupyter_runtime_dir

    if manager.transport != "ipc":
        return localhost()
    folder = jupyter_runtime_dir()
    os.makedirs(folder, mode=0o700, exist_ok=True)
    return os.path.join(folder, f"flashtrade-{uuid.uuid4().hex[:12]}-ipc")


def kernels_over_ipc() -> None:
    """Kernels started in this process use IPC transport at an absolute path.

    myst-nb and jupyter-cache start kernels through nbclient without a traitlets config, so
    the settings go on the kernel-manager classes: the transport trait's default, and a
    per-class ``_ip_default`` (traitlets looks a dynamic default up in the instance's own
    class first), which replaces jupyter_client's relative ``"kernel-ipc"``. Their clients wait
    for each message in polls of at most a second (``flashtrade_lib.kernel_messages``).
    """
    from jupyter_client.manager import AsyncKernelManager, KernelManager

    KernelManager.transport.default_value = "ipc"
    for cls in (KernelManager, AsyncKernelManager):
        cls._ip_default = _absolute_ipc_path
    from flashtrade_lib.kernel_messages import messages_polled_in_slices

    messages_polled_in_slices()


def _plotly_where_drawn(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    """plotly.js in the head of a page whose body holds a plotly figure, and of no other page."""
    if PLOTLY_DIV in context.get("body", ""):
        app.add_js_file(PLOTLY_JS, priority=100)


def setup(app: Sphinx) -> dict[str, object]:
    _plotly_js_path()  # fail early, with a clear message
    kernels_over_ipc()
    app.connect("html-page-context", _plotly_where_drawn)
    app.add_js_file(None, body=NO_SNIPPETS_FROM_FILES, priority=210)
    app.add_js_file("plotly_fit.js")
    app.add_js_file("page_fit.js")
    app.add_js_file("search_rank.js", defer="defer")
    app.add_css_file("flashtrade.css")
    app.connect("config-inited", _add_static)
    app.connect("env-get-updated", number_per_chapter, priority=900)
    app.connect("env-get-updated", check_lab_numbers, priority=901)
    accept_lab_numbers()
    app.add_post_transform(ExecutionTableInWords)
    app.add_post_transform(GlossaryLinks)
    app.add_directive("grading-times", GradingTimes)
    app.connect("build-finished", _copy_plotly)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

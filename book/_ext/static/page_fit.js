// Text and boxes that fit the column, or show that they scroll (added to each page by
// book/_ext/flashtrade_offline.py; the CSS half is flashtrade.css).
//  * Code lines get a hanging indent: every line of a highlighted code block becomes its own
//    block (span.ft-line) whose wrapped continuation starts 4 columns right of the line's own
//    indentation, so a wrapped comment or index expression never looks like a new statement
//    at column 0. The text, and so what the copy button copies, is unchanged.
//  * A long CamelCase word in a heading ("FlashAttentionTrader") may break between its
//    words (a <wbr>), so on a phone a title wraps there instead of widening the page.
//  * A box that scrolls sideways with content hidden past an edge gets the class
//    ft-more-right / ft-more-left (kept up to date on scroll and resize): the CSS fades the
//    content out at that edge, a cue that shows whatever the content's own background is.
// tests/browser_layout.js checks both on every page at 1280 and 400 px.
(() => {
  const HANG = 4;  // columns of hanging indent past the line's own indentation

  const splitLines = (pre) => {
    if (pre.dataset.ftLines) return;
    pre.dataset.ftLines = "yes";
    const lines = [[]];
    // Pygments emits a flat sequence of text nodes and token spans; a token may span lines
    // (a docstring): it is cut at each newline into clones that keep its class.
    for (const node of [...pre.childNodes]) {
      const text = node.textContent;
      const parts = text.split("\n");
      parts.forEach((part, i) => {
        if (i > 0) lines.push([]);
        if (!part) return;
        let piece;
        if (node.nodeType === Node.ELEMENT_NODE) {
          piece = node.cloneNode(false);
          piece.textContent = part;
        } else piece = document.createTextNode(part);
        lines[lines.length - 1].push(piece);
      });
    }
    const finalNewline = lines.length > 1 && lines[lines.length - 1].length === 0;
    if (finalNewline) lines.pop();
    pre.textContent = "";
    lines.forEach((pieces, i) => {
      const line = document.createElement("span");
      line.className = "ft-line";
      const text = pieces.map((p) => p.textContent).join("");
      const indent = text.length - text.trimStart().length;
      line.style.setProperty("--ft-hang", `${indent + HANG}ch`);
      line.append(...pieces);
      // the newline stays in the text (for copying and for a reader's find), but is not
      // rendered: each line is a block of its own
      const nl = document.createElement("span");
      nl.className = "ft-nl";
      nl.textContent = "\n";
      if (i < lines.length - 1 || finalNewline) line.append(nl);
      if (!text) line.classList.add("ft-empty");
      pre.append(line);
    });
  };

  const breakCamelCase = (heading) => {
    if (heading.dataset.ftWbr) return;
    heading.dataset.ftWbr = "yes";
    const walker = document.createTreeWalker(heading, NodeFilter.SHOW_TEXT);
    const texts = [];
    for (let n = walker.nextNode(); n; n = walker.nextNode()) texts.push(n);
    for (const node of texts) {
      if (!/[a-z][A-Z]/.test(node.data) || !/\S{14,}/.test(node.data)) continue;
      const parts = node.data.split(/(?<=[a-z])(?=[A-Z])/);
      const frag = document.createDocumentFragment();
      parts.forEach((part, i) => {
        if (i) frag.append(document.createElement("wbr"));
        frag.append(part);
      });
      node.replaceWith(frag);
    }
  };

  const SCROLLERS = [
    "div.cell_output .output.text_html", ".pst-scrollable-table-container", "table.indextable",
    "div.cell_output div.output pre", "article div.highlight pre", 'mjx-container[display="true"]',
    "div.math", "article .table-wrapper",
  ].join(",");

  const cue = (box) => {
    const hidden = box.scrollWidth - box.clientWidth;
    box.classList.toggle("ft-more-right", hidden > 2 && box.scrollLeft < hidden - 2);
    box.classList.toggle("ft-more-left", hidden > 2 && box.scrollLeft > 2);
  };

  const cueAll = () => document.querySelectorAll(SCROLLERS).forEach((box) => {
    if (!box.dataset.ftCue) {
      box.dataset.ftCue = "yes";
      box.addEventListener("scroll", () => cue(box), { passive: true });
    }
    cue(box);
  });

  const start = () => {
    document.querySelectorAll("div.highlight pre").forEach(splitLines);
    document.querySelectorAll("article h1, article h2, article h3").forEach(breakCamelCase);
    cueAll();
    document.documentElement.dataset.pageFitted = "yes";
  };

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
  window.addEventListener("load", () => { start(); setTimeout(cueAll, 300); });
  window.addEventListener("resize", cueAll);
  // details/dropdowns opened later, and MathJax typesetting after load, change what overflows
  document.addEventListener("toggle", start, true);
  document.addEventListener("click", () => setTimeout(start, 50));
  new ResizeObserver(cueAll).observe(document.documentElement);
})();

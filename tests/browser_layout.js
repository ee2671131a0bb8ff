// Layout checks run inside every built page by tests/test_browser.py.
// Returns a list of human-readable problems (empty = the page is laid out for its width).
//
//  1. Overflow: an element of the article wider than the content column that is not inside
//     a scroll container (the reader cannot reach the cut-off part), or clipped by an
//     ancestor that hides overflow.
//     Anything that scrolls sideways must show that it scrolls (a shadow at the hidden edge).
//  2. Display math: an equation wider than its box. At desktop widths (`mustFit`) every
//     equation must fit; on narrow screens it may scroll, never clip.
//  3. Plotly: text boxes (titles, axis titles, annotations, tick labels, legend entries)
//     that overlap each other or run off the figure (a side, the top or the bottom), or an
//     annotation lying on an error bar.
(mustFit) => {
  const problems = [];
  const article = document.querySelector("article.bd-article") || document.querySelector("main");
  if (!article) return ["no article element"];
  const slack = 1.5;  // sub-pixel rounding
  const cs = (el) => getComputedStyle(el);
  const describe = (el) => {
    let name = el.tagName.toLowerCase();
    if (el.id) name += "#" + el.id;
    const cls = (el.getAttribute("class") || "").trim().split(/\s+/).filter(Boolean).slice(0, 3);
    if (cls.length) name += "." + cls.join(".");
    const text = (el.innerText || el.textContent || "").replace(/\s+/g, " ").trim().slice(0, 60);
    const section = el.closest("section[id]");
    return `${name} "${text}"` + (section ? ` (in #${section.id})` : "");
  };
  const visible = (el) => {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) return false;
    const s = cs(el);
    return s.visibility !== "hidden" && s.display !== "none" && Number(s.opacity) !== 0;
  };
  const scrolls = (el) => ["auto", "scroll"].includes(cs(el).overflowX);
  const hides = (el) => ["hidden", "clip"].includes(cs(el).overflowX);

  // 1. Overflow of the content column.
  const ar = article.getBoundingClientRect();
  const as = cs(article);
  const colLeft = ar.left + parseFloat(as.paddingLeft);
  const colRight = ar.right - parseFloat(as.paddingRight);
  const reported = new Set();
  for (const el of article.querySelectorAll("*")) {
    if (el.closest("mjx-container")) continue;  // checked in 2, with its own rule
    if (el.closest(".plotly-graph-div")) continue;  // plotly lays out inside its own div
    if (!visible(el)) continue;
    const r = el.getBoundingClientRect();
    if (r.right <= colRight + slack && r.left >= colLeft - slack) continue;
    let anc = el.parentElement, ok = false, clippedBy = null;
    while (anc && anc !== article) {
      if (reported.has(anc)) { ok = true; break; }
      if (scrolls(anc)) { ok = true; break; }
      if (hides(anc)) { clippedBy = anc; break; }
      anc = anc.parentElement;
    }
    if (ok) continue;
    reported.add(el);
    const width = Math.round(r.width), col = Math.round(colRight - colLeft);
    problems.push(clippedBy
      ? `clipped: ${describe(el)} is ${width} px wide, cut off by ${describe(clippedBy).split(" ")[0]}`
      : `too wide: ${describe(el)} is ${width} px wide in a ${col} px column, outside any scroll container`);
  }

  // 1b. Anything that scrolls sideways must show that it does: the book's scroll boxes draw a
  //     shadow at the hidden edge (a gradient background, book/_ext/static/flashtrade.css);
  //     a bare scroll box hides its cut-off columns from a reader without a visible scrollbar.
  for (const el of article.querySelectorAll("*")) {
    if (!scrolls(el) || el.closest("mjx-container") || el.closest(".plotly-graph-div") || !visible(el)) continue;
    if (el.scrollWidth <= el.clientWidth + 2) continue;
    if (cs(el).backgroundImage.includes("gradient")) continue;
    problems.push(`scrolls sideways without showing it: ${describe(el)} holds ${el.scrollWidth} px in ${el.clientWidth} px`);
  }

  // 2. Display math.
  for (const box of document.querySelectorAll('mjx-container[display="true"]')) {
    if (!visible(box)) continue;
    const math = box.querySelector("mjx-math");
    if (!math) continue;
    const need = math.getBoundingClientRect().width;
    // the width the equation may use: its container's, or the nearest block ancestor's
    let holder = box;
    while (holder && holder.getBoundingClientRect().width === 0) holder = holder.parentElement;
    let anc = box, scrollable = false, clipped = false, room = holder.clientWidth || holder.getBoundingClientRect().width;
    while (anc && anc !== document.body) {
      if (scrolls(anc)) { scrollable = true; room = Math.min(room, anc.clientWidth); break; }
      if (hides(anc)) { clipped = true; room = Math.min(room, anc.clientWidth); break; }
      anc = anc.parentElement;
    }
    room = Math.min(room, colRight - colLeft);
    if (need <= room + slack) continue;
    const tex = (box.closest(".math") || box).getAttribute("data-tex") || describe(box.closest(".math") || box);
    if (mustFit) problems.push(`equation wider than its box (${Math.round(need)} vs ${Math.round(room)} px): ${tex.slice(0, 80)}`);
    else if (!scrollable) problems.push(`equation clipped (${Math.round(need)} vs ${Math.round(room)} px, no scroll): ${tex.slice(0, 80)}`);
    void clipped;
  }

  // 3. Plotly text that overlaps.
  const overlap = (a, b) => {
    const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
    const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
    return w > 1 && h > 1;
  };
  const TEXT = [
    "text.gtitle", "text[class$='title']", "g.annotation text", "g[class$='tick'] > text",
    "g[class$='tick2'] > text", "text.legendtext",
  ].join(",");
  document.querySelectorAll("div.plotly-graph-div").forEach((fig, i) => {
    const title = (fig.querySelector("text.gtitle") || {}).textContent || `figure ${i + 1}`;
    const boxes = [];
    fig.querySelectorAll(TEXT).forEach((t) => {
      if (!t.textContent.trim() || !visible(t)) return;
      boxes.push({ t, r: t.getBoundingClientRect(), label: t.textContent.trim().slice(0, 40) });
    });
    const clashes = [];
    const frame = fig.getBoundingClientRect();
    boxes.forEach(({ r, label }) => {
      if (r.left < frame.left - slack || r.right > frame.right + slack ||
          r.top < frame.top - slack || r.bottom > frame.bottom + slack) clashes.push(`"${label}" runs off the figure`);
    });
    for (let a = 0; a < boxes.length; a++) {
      for (let b = a + 1; b < boxes.length; b++) {
        if (boxes[a].t.contains(boxes[b].t) || boxes[b].t.contains(boxes[a].t)) continue;
        if (overlap(boxes[a].r, boxes[b].r)) clashes.push(`"${boxes[a].label}" / "${boxes[b].label}"`);
      }
    }
    const bars = [...fig.querySelectorAll("g.errorbar path")].filter(visible).map((p) => p.getBoundingClientRect());
    fig.querySelectorAll("g.annotation text").forEach((t) => {
      if (!visible(t)) return;
      const r = t.getBoundingClientRect();
      if (bars.some((bar) => overlap(r, bar))) clashes.push(`annotation "${t.textContent.trim().slice(0, 40)}" / an error bar`);
    });
    if (clashes.length) {
      problems.push(`plotly "${title.slice(0, 50)}": ${clashes.length} overlapping or cut-off text box(es): ${clashes.slice(0, 4).join("; ")}`);
    }
  });
  return problems;
}

// Layout checks run inside every built page by tests/test_browser.py.
// Returns a list of human-readable problems (empty = the page is laid out for its width).
//
//  1. Overflow: an element of the article wider than the content column that is not inside
//     a scroll container (the reader cannot reach the cut-off part), or clipped by an
//     ancestor that hides overflow.
//  1b. Anything that scrolls sideways with content hidden past an edge must show it there:
//     the content fades out at that edge (a CSS mask, book/_ext/static/page_fit.js), or a
//     shadow drawn by the box's background that the content does not cover. A thin scrollbar
//     at the bottom of a wide table is not a cue: it is off screen or unnoticed.
//  1c. The page itself wider than the viewport (a phone reader pans the whole page sideways),
//     naming what sticks out; and text that runs out of its own box (a long word in a title).
//  (Wrapped code's hanging indent is CSS, book/_ext/static/flashtrade.css; a check of it here,
//  by rebuilding each line's text from the DOM, gave false positives that changed from one page
//  load to the next, and was removed rather than left to make the suite flaky.)
//  2. Display math: an equation wider than its box. At desktop widths (`mustFit`) every
//     equation must fit; on narrow screens it may scroll (with the cue of 1b), never clip.
//  3. Plotly: text boxes (titles, axis titles, annotations, tick labels, legend entries)
//     that overlap each other or run off the figure (a side, the top or the bottom), or an
//     annotation lying on an error bar; a legend beside the plot that takes more than a
//     third of the figure's width; a log axis over 1.5 decades or more labelled between
//     decades (plotly's small "2" and "5" labels read as "2, 1, 5, 2, 0.1, 5").
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

  // 1b. Scroll boxes with hidden content show a cue at each edge that hides something.
  const masked = (el) => {
    const s = cs(el);
    return /gradient/.test(s.maskImage || "") || /gradient/.test(s.webkitMaskImage || "");
  };
  const opaque = (el) => {
    const c = cs(el).backgroundColor;
    const m = c.match(/rgba?\(([^)]+)\)/);
    return m ? (m[1].split(",").length < 4 || parseFloat(m[1].split(",")[3]) > 0.05) : false;
  };
  // a background-drawn shadow is seen only where nothing inside the box paints over it (a
  // zebra-striped row, a cell's own background): sampled at a quarter, half and three quarters
  // of the box's height, wherever the box is on the page
  const shadowSeen = (box, x) => {
    if (!/gradient/.test(cs(box).backgroundImage)) return false;
    const r = box.getBoundingClientRect();
    const inside = [...box.querySelectorAll("*")].filter((el) => opaque(el) && visible(el));
    return [0.25, 0.5, 0.75].every((f) => {
      const y = r.top + f * r.height;
      return !inside.some((el) => {
        const q = el.getBoundingClientRect();
        return q.left <= x && x <= q.right && q.top <= y && y <= q.bottom;
      });
    });
  };
  const scrollBoxes = [...article.querySelectorAll("*")].filter((el) =>
    scrolls(el) && !el.closest(".plotly-graph-div") && visible(el) && el.scrollWidth > el.clientWidth + 2);
  for (const el of scrollBoxes) {
    const r = el.getBoundingClientRect();
    const hiddenRight = el.scrollLeft < el.scrollWidth - el.clientWidth - 2;
    const hiddenLeft = el.scrollLeft > 2;
    const edges = [];
    if (hiddenRight && !masked(el) && !shadowSeen(el, r.left + el.clientWidth - 3)) edges.push("right");
    if (hiddenLeft && !masked(el) && !shadowSeen(el, r.left + 3)) edges.push("left");
    if (edges.length) {
      problems.push(`cut at the ${edges.join(" and ")} edge with no cue that it scrolls: ${describe(el)} holds ${el.scrollWidth} px in ${el.clientWidth} px`);
    }
  }

  // 1c. The page wider than the viewport; text running out of its own box.
  const viewport = document.documentElement.clientWidth;
  if (document.documentElement.scrollWidth > viewport + slack) {
    const insideScroller = (el) => {
      for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) if (scrolls(a) || hides(a)) return true;
      return false;
    };
    const culprits = [...document.body.querySelectorAll("*")].filter((el) => {
      if (!visible(el) || insideScroller(el)) return false;
      const r = el.getBoundingClientRect();
      return r.right > viewport + slack || el.scrollWidth > el.clientWidth + slack && !scrolls(el) && !hides(el) &&
        r.left + el.scrollWidth > viewport + slack;
    });
    const deepest = culprits.filter((el) => !culprits.some((o) => o !== el && el.contains(o)));
    problems.push(`page wider than the viewport (${document.documentElement.scrollWidth} px in ${viewport} px): ` +
      deepest.slice(0, 3).map(describe).join("; "));
  }
  const TEXT_BOXES = "h1, h2, h3, h4, h5, h6, p, li, dt, dd, caption, summary, .admonition-title, p.caption";
  for (const el of article.querySelectorAll(TEXT_BOXES)) {
    if (!visible(el) || scrolls(el)) continue;
    if (el.scrollWidth <= el.clientWidth + slack) continue;
    let anc = el.parentElement, inScroller = false;
    while (anc && anc !== document.body) {
      if (scrolls(anc)) { inScroller = true; break; }
      anc = anc.parentElement;
    }
    if (inScroller || el.querySelector("mjx-container, .highlight, table, img, svg")) continue;
    problems.push(`text runs out of its box: ${describe(el)} needs ${el.scrollWidth} px, has ${el.clientWidth} px`);
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
    const legend = fig.querySelector("g.legend");
    const fl = fig._fullLayout;
    if (legend && visible(legend) && fl && (fl.legend || {}).orientation !== "h") {
      const lw = legend.getBoundingClientRect().width;
      if (lw > frame.width / 3) clashes.push(`the legend takes ${Math.round(100 * lw / frame.width)} % of the width`);
    }
    if (fl) {
      for (const name of Object.keys(fl).filter((k) => /^[xy]axis\d*$/.test(k))) {
        const ax = fl[name];
        if (ax.type !== "log" || !ax.range || Math.abs(ax.range[1] - ax.range[0]) < 1.5) continue;
        // Ticks the figure names itself (the lookbacks tried, say) are chosen, not plotly's 2s and 5s.
        if (Array.isArray(((fig.layout || {})[name] || {}).tickvals)) continue;
        const labels = [...fig.querySelectorAll(`g.${ax._id}tick > text`)].map((t) => t.textContent.trim()).filter(Boolean);
        const between = labels.filter((t) => /^[2-9]$/.test(t));
        if (between.length) clashes.push(`log axis ${ax._id} labelled between decades: ${labels.slice(0, 6).join(", ")}`);
      }
    }
    if (clashes.length) {
      problems.push(`plotly "${title.slice(0, 50)}": ${clashes.length} overlapping or cut-off text box(es): ${clashes.slice(0, 4).join("; ")}`);
    }
  });
  return problems;
}

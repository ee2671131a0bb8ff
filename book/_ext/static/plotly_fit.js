// Lay every plotly figure out for the width it is shown at (added to each page by
// book/_ext/flashtrade_offline.py). Plotly never wraps a title, keeps its legend on the
// right and draws every tick label it planned, which in a narrow column leaves titles cut
// off, the plot squeezed and labels on top of each other. After the page has loaded (and
// on resize), for each figure:
//  * a title wider than the figure is broken into lines that fit, kept inside the figure, and
//    the top margin grows to make room for it;
//  * in a narrow figure, or where a vertical legend would take more than LEGEND_SHARE of the
//    width from the plot, the legend moves below the plot, laid out horizontally;
//  * a log axis spanning 1.5 decades or more is labelled at decades only (plotly's default
//    mixes in small "2" and "5" labels that read as "2, 1, 5, 2, 0.1, 5");
//  * an axis whose tick labels overlap gets fewer of them (log axes: 2-5 labels, then
//    decades only; arrays of ticks: every other one; others: half as many).
// tests/browser_layout.js checks the result on every page at 1280 and 400 px.
(() => {
  const NARROW_PX = 560;
  const LEGEND_SHARE = 0.28;
  const original = new WeakMap();  // div -> the title and legend the notebook gave it

  const overlap = (a, b) =>
    Math.min(a.right, b.right) - Math.max(a.left, b.left) > 1 &&
    Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > 1;

  const wrap = (text, perLine) => text.split(/<br\s*\/?>/i).map((segment) => {
    const limit = /^\s*<sup>/i.test(segment) ? Math.floor(perLine / 0.7) : perLine;  // sup: 70 % size
    const lines = [];
    let line = "";
    for (const word of segment.split(" ")) {
      if (line && (line + " " + word).length > limit) { lines.push(line); line = word; }
      else line = line ? line + " " + word : word;
    }
    if (line) lines.push(line);
    return lines.join("<br>");
  }).join("<br>");

  // the mean glyph width of a title's widest line (a title of several lines is one <text> with
  // a <tspan> per line: its whole text over its widest line's width would undercount)
  const glyphWidth = (shown) => {
    if (!shown || !shown.textContent.length) return 9;
    const lines = [...shown.querySelectorAll("tspan.line")].filter((l) => l.textContent.length);
    if (!lines.length) return shown.getBBox().width / shown.textContent.length;
    return Math.max(...lines.map((l) => l.getComputedTextLength() / l.textContent.length));
  };

  const titleBox = (div) => {
    const shown = div.querySelector("text.gtitle");
    if (!shown) return null;
    const r = shown.getBoundingClientRect(), top = div.getBoundingClientRect().top;
    return { top: r.top - top, bottom: r.bottom - top };
  };

  const remember = (div) => {
    if (original.has(div)) return original.get(div);
    const t = div.layout.title;
    const saved = {  // as first drawn
      title: typeof t === "string" ? t : (t && t.text) || "",
      titleLayout: JSON.parse(JSON.stringify(typeof t === "object" && t ? t : {})),
      titleBox: titleBox(div),
      marginT: div._fullLayout.margin.t,
      legend: JSON.parse(JSON.stringify(div.layout.legend || {})),
      glyph: glyphWidth(div.querySelector("text.gtitle")),
      legendWidth: (div.querySelector("g.legend") || { getBoundingClientRect: () => ({ width: 0 }) })
        .getBoundingClientRect().width,
    };
    original.set(div, saved);
    return saved;
  };

  const titleUpdate = (div, saved) => {
    if (!saved.title) return {};
    // the title starts at 5 % of the width (plotly's default x); keep a margin for glyphs
    // wider than the average measured
    const perLine = Math.max(16, Math.floor((0.95 * div.clientWidth - 32) / (1.1 * Math.max(saved.glyph, 1))));
    const text = wrap(saved.title, perLine);
    const now = div.layout.title && div.layout.title.text;
    return text === now ? {} : { "title.text": text };
  };

  // Where a wrapped title goes. Plotly lifts a title of several lines by its extra lines (and its
  // automargin misplaces it further), so the first lines would be cut off at the top: pin it
  // 8 px below the top of the figure and grow the top margin by as much as the title grew, which
  // keeps the gap the notebook gave it above the plot (subplot titles, menus). A title back to
  // its own text gets its own placement and margin back.
  const TITLE_TOP_PX = 8;
  const titlePlaceUpdate = (div, saved) => {
    const box = titleBox(div);
    if (!box || !saved.titleBox) return {};
    const t = div.layout.title || {};
    if (t.text === saved.title) {
      if (div.layout.margin && div.layout.margin.t !== saved.marginT && t.yanchor === "top" && !saved.titleLayout.yanchor) {
        return { title: { ...saved.titleLayout, text: saved.title }, "margin.t": saved.marginT };
      }
      return {};
    }
    const update = {};
    if (t.yref !== "container" || t.y !== 1 || t.yanchor !== "top" || t.automargin) {
      Object.assign(update, { "title.yref": "container", "title.y": 1, "title.yanchor": "top", "title.automargin": false });
    }
    const pad = (t.pad && t.pad.t) || 0;
    const wantPad = Math.max(0, Math.round(pad + TITLE_TOP_PX - box.top));
    if (Math.abs(wantPad - pad) > 2) update["title.pad.t"] = wantPad;
    // the margin for the title's bottom once placed (the pad moves it by the same amount)
    const bottom = box.bottom + (wantPad - pad);
    const wantT = Math.round(saved.marginT + Math.max(0, bottom - saved.titleBox.bottom));
    if (Math.abs(wantT - div._fullLayout.margin.t) > 2) update["margin.t"] = wantT;
    return update;
  };

  const legendUpdate = (div, saved) => {
    const fl = div._fullLayout;
    if (!fl.showlegend || (saved.legend.orientation || "v") !== "v") return {};
    if (div.clientWidth >= NARROW_PX && saved.legendWidth <= LEGEND_SHARE * div.clientWidth) {
      return JSON.stringify(saved.legend) === JSON.stringify(div.layout.legend || {}) ? {} : { legend: saved.legend };
    }
    // below everything the x axes draw under the plot (tick labels, axis titles)
    const svg = div.querySelector("svg.main-svg").getBoundingClientRect();
    const plotBottom = svg.top + fl._size.t + fl._size.h;
    let lowest = plotBottom;
    div.querySelectorAll("g[class^='x'][class$='tick'] > text, text[class^='x'][class$='title']").forEach((t) => {
      lowest = Math.max(lowest, t.getBoundingClientRect().bottom);
    });
    const y = -(lowest - plotBottom + 8) / Math.max(fl._size.h, 1);
    const legend = { ...saved.legend, orientation: "h", x: 0, xanchor: "left", y, yanchor: "top" };
    const now = div.layout.legend || {};
    return now.orientation === "h" && Math.abs((now.y || 0) - y) < 0.02 ? {} : { legend };
  };

  const tickUpdate = (div) => {
    const fl = div._fullLayout;
    const update = {};
    for (const name of Object.keys(fl).filter((k) => /^[xy]axis\d*$/.test(k))) {
      const ax = fl[name];
      const given0 = div.layout[name] || {};
      if (ax.type === "log" && given0.dtick === undefined && !Array.isArray(given0.tickvals) &&
          Math.abs(ax.range[1] - ax.range[0]) >= 1.5) {
        update[`${name}.dtick`] = 1;
        continue;
      }
      const labels = [...div.querySelectorAll(`g.${ax._id}tick > text`)].filter((t) => t.textContent.trim());
      const boxes = labels.map((t) => t.getBoundingClientRect());
      const crowded = boxes.some((a, i) => boxes.slice(i + 1).some((b) => overlap(a, b)));
      if (!crowded) continue;
      const given = div.layout[name] || {};
      if (Array.isArray(given.tickvals) && given.tickvals.length > 2) {
        update[`${name}.tickvals`] = given.tickvals.filter((_, i) => i % 2 === 0);
        if (Array.isArray(given.ticktext)) update[`${name}.ticktext`] = given.ticktext.filter((_, i) => i % 2 === 0);
      } else if (ax.type === "log") {
        update[`${name}.dtick`] = given.dtick === "D2" ? 1 : "D2";
      } else {
        update[`${name}.nticks`] = Math.max(2, Math.floor(labels.length / 2));
      }
    }
    return update;
  };

  // a colorbar title beside the bar, not over its tick labels
  const colorbarUpdate = (div) => {
    const title = div.querySelector("text.cbtitle");
    if (!title) return null;
    const r = title.getBoundingClientRect();
    const ticks = [...div.querySelectorAll("g.colorbar text")].filter((t) => t !== title);
    if (!ticks.some((t) => overlap(r, t.getBoundingClientRect()))) return null;
    const traces = div.data.map((t, i) => (t.showscale !== false && "colorscale" in t ? i : -1)).filter((i) => i >= 0);
    return traces.length ? traces : null;
  };

  const fit = async (div) => {
    if (!window.Plotly || !div._fullLayout || !div.clientWidth || !div.querySelector("svg.main-svg")) return;
    const saved = remember(div);
    const bars = colorbarUpdate(div);
    if (bars) await window.Plotly.restyle(div, { "colorbar.title.side": "right" }, bars);
    for (let pass = 0; pass < 6; pass++) {
      const title = titleUpdate(div, saved);  // placed once its text is final
      const place = Object.keys(title).length ? {} : titlePlaceUpdate(div, saved);
      const update = { ...title, ...place, ...legendUpdate(div, saved), ...tickUpdate(div) };
      if (!Object.keys(update).length) return;
      await window.Plotly.relayout(div, update);
    }
  };

  // twice: a legend moved below the plot or a new tick spacing changes the plot's size, and
  // the second pass places what depends on it (the legend's offset, the title) for that size
  const fitAll = () => {
    const divs = [...document.querySelectorAll("div.plotly-graph-div")];
    // first to the width the column has now: plotly measured it while the page was still
    // being laid out (code blocks re-wrapped, math typeset), and follows only window resizes
    const resize = (div) => (window.Plotly && div._fullLayout ? window.Plotly.Plots.resize(div) : null);
    return Promise.all(divs.map(resize)).then(() => Promise.all(divs.map(fit))).then(() => Promise.all(divs.map(fit)))
      .then(() => { document.documentElement.dataset.plotlyFitted = "yes"; });
  };
  window.addEventListener("load", fitAll);
  let pending = null;
  window.addEventListener("resize", () => { clearTimeout(pending); pending = setTimeout(fitAll, 200); });
})();

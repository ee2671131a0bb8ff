// Lay every plotly figure out for the width it is shown at (added to each page by
// book/_ext/flashtrade_offline.py). Plotly never wraps a title, keeps its legend on the
// right and draws every tick label it planned, which in a narrow column leaves titles cut
// off, the plot squeezed and labels on top of each other. After the page has loaded (and
// on resize), for each figure:
//  * a title wider than the figure is broken into lines that fit (and may push the margin);
//  * in a narrow figure a vertical legend moves below the plot, laid out horizontally;
//  * an axis whose tick labels overlap gets fewer of them (log axes: 2-5 labels, then
//    decades only; arrays of ticks: every other one; others: half as many).
// tests/browser_layout.js checks the result on every page at 1280 and 400 px.
(() => {
  const NARROW_PX = 560;
  const original = new WeakMap();  // div -> the title and legend the notebook gave it

  const overlap = (a, b) =>
    Math.min(a.right, b.right) - Math.max(a.left, b.left) > 1 &&
    Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > 1;

  const wrap = (text, perLine) => text.split(/<br\s*\/?>/i).map((segment) => {
    const lines = [];
    let line = "";
    for (const word of segment.split(" ")) {
      if (line && (line + " " + word).length > perLine) { lines.push(line); line = word; }
      else line = line ? line + " " + word : word;
    }
    if (line) lines.push(line);
    return lines.join("<br>");
  }).join("<br>");

  const remember = (div) => {
    if (original.has(div)) return original.get(div);
    const t = div.layout.title;
    const shown = div.querySelector("text.gtitle");  // as first drawn: measure its glyphs
    const saved = {
      title: typeof t === "string" ? t : (t && t.text) || "",
      legend: JSON.parse(JSON.stringify(div.layout.legend || {})),
      glyph: shown && shown.textContent.length ? shown.getBBox().width / shown.textContent.length : 9,
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
    return text === now ? {} : { "title.text": text, "title.automargin": true, "title.yref": "container" };
  };

  const legendUpdate = (div, saved) => {
    const fl = div._fullLayout;
    if (!fl.showlegend || (saved.legend.orientation || "v") !== "v") return {};
    if (div.clientWidth >= NARROW_PX) {
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
    for (let pass = 0; pass < 4; pass++) {
      const update = { ...titleUpdate(div, saved), ...legendUpdate(div, saved), ...tickUpdate(div) };
      if (!Object.keys(update).length) return;
      await window.Plotly.relayout(div, update);
    }
  };

  const fitAll = () => Promise.all([...document.querySelectorAll("div.plotly-graph-div")].map(fit))
    .then(() => { document.documentElement.dataset.plotlyFitted = "yes"; });
  window.addEventListener("load", fitAll);
  let pending = null;
  window.addEventListener("resize", () => { clearTimeout(pending); pending = setTimeout(fitAll, 200); });
})();

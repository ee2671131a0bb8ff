// Lay every plotly figure out for the width it is shown at (added to each page by
// book/_ext/flashtrade_offline.py). Plotly never wraps a title and keeps its legend on the
// right, which in a phone-wide column leaves the title cut off and the plot squeezed.
// After the page has loaded (and on resize), for each figure:
//  * a title wider than the figure is broken into lines that fit (and may push the margin);
//  * in a narrow figure a vertical legend moves below the plot, laid out horizontally.
(() => {
  const NARROW_PX = 560;
  const original = new WeakMap();  // div -> {title, legend} as the notebook made them

  const wrap = (text, perLine) => {
    const lines = [];
    let line = "";
    for (const word of text.split(" ")) {
      if (line && (line + " " + word).length > perLine) { lines.push(line); line = word; }
      else line = line ? line + " " + word : word;
    }
    if (line) lines.push(line);
    return lines.join("<br>");
  };

  const fit = (div) => {
    if (!window.Plotly || !div._fullLayout || !div.clientWidth) return;
    if (!original.has(div)) {
      const t = div.layout.title;
      const shown = div.querySelector("text.gtitle");  // still on one line: measure its glyphs
      original.set(div, {
        title: typeof t === "string" ? t : (t && t.text) || "",
        legend: JSON.parse(JSON.stringify(div.layout.legend || {})),
        glyph: shown && shown.textContent.length ? shown.getBBox().width / shown.textContent.length : 9,
      });
    }
    const { title, legend, glyph } = original.get(div);
    const update = {};
    if (title && !title.includes("<br")) {
      const room = div.clientWidth - 24;
      const perLine = Math.max(16, Math.floor(room / Math.max(glyph, 1)));
      const text = title.length > perLine ? wrap(title, perLine) : title;
      if (text !== (div.layout.title && div.layout.title.text)) {
        update["title.text"] = text;
        update["title.automargin"] = true;
        update["title.yref"] = "container";
      }
    }
    const narrow = div.clientWidth < NARROW_PX;
    const vertical = (legend.orientation || "v") === "v";
    const showsLegend = div._fullLayout.showlegend;
    if (showsLegend && vertical) {
      // below the x axis' tick labels and title (plotly places legends in plot-area units)
      const plotHeight = (div._fullLayout._size && div._fullLayout._size.h) || 300;
      const below = { orientation: "h", x: 0, xanchor: "left", y: -80 / plotHeight, yanchor: "top" };
      const want = narrow ? { ...legend, ...below } : legend;
      if (JSON.stringify(want) !== JSON.stringify(div.layout.legend || {})) update.legend = want;
    }
    if (Object.keys(update).length) window.Plotly.relayout(div, update);
  };

  const fitAll = () => document.querySelectorAll("div.plotly-graph-div").forEach(fit);
  window.addEventListener("load", fitAll);
  let pending = null;
  window.addEventListener("resize", () => { clearTimeout(pending); pending = setTimeout(fitAll, 200); });
})();

// Search results: chapters first, each page once (added to every page by
// book/_ext/flashtrade_offline.py; acts only where Sphinx's searchtools.js is loaded).
// Sphinx ranks a glossary term (an index entry) above every chapter that explains it, and
// lists a page once per matching section or entry, so a query for "softmax" opened with the
// glossary, twice. Here the reference pages (glossary, notation, references) come after the
// chapters, and each page is listed once, at its best-scoring match.
(() => {
  if (typeof Search === "undefined" || !Search._performSearch) return;
  const REFERENCE = /(^|\/)(glossary|notation|references|genindex)$/;
  const rank = Search._performSearch;
  Search._performSearch = (...args) => {
    // Sphinx returns results lowest score first and shows them from the end
    const results = rank(...args);
    const order = results.map((r, i) => [REFERENCE.test(r[0]) ? 0 : 1, i, r]);
    order.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    const seen = new Set();
    const kept = [];
    for (let i = order.length - 1; i >= 0; i--) {
      const r = order[i][2];
      if (seen.has(r[0])) continue;
      seen.add(r[0]);
      kept.push(r);
    }
    return kept.reverse();
  };
})();

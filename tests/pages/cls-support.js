// Helpers for the CLS parity pages (a classic script: runs before parity.js).
// Query: early=T1,T2,... moves #block at those times (ms after this script
// runs), before the libraries load when combined with parity.js's `lazy`.
(() => {
  const shifts = (window.__shifts = []);
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      shifts.push({ startTime: e.startTime, value: e.value, hadRecentInput: e.hadRecentInput });
    }
  }).observe({ type: 'layout-shift', buffered: true });

  const block = () => document.getElementById('block');
  let offset = 0;
  /** Moves #block by `dy` px (a layout shift in the next frame). */
  const move = (dy) => {
    offset += dy;
    block().style.top = `${offset}px`;
  };
  /** Moves #block by `dy` and resolves once the shift was observed. */
  window.shift = (dy = 100) => {
    const before = shifts.length;
    move(dy);
    return waitForShift(before);
  };
  const waitForShift = (before) =>
    new Promise((resolve, reject) => {
      const t0 = performance.now();
      const poll = () => {
        if (shifts.length > before) resolve(shifts[shifts.length - 1]);
        else if (performance.now() - t0 > 5000) reject(new Error('no layout shift observed'));
        else setTimeout(poll, 10);
      };
      poll();
    });
  /** Inserts a paragraph above #block, pushing it and what follows down. */
  window.insertAbove = (lines = 3) => {
    const before = shifts.length;
    const p = document.createElement('p');
    p.innerHTML = Array.from({ length: lines }, (_, i) => `inserted line ${i + 1}`).join('<br>');
    block().before(p);
    return waitForShift(before);
  };
  /** Adds the page's first contentful element (for a page without one). */
  window.addContent = () => {
    const h = document.createElement('h1');
    h.textContent = 'content';
    document.body.prepend(h);
  };
  /**
   * Moves #block at the given times (ms from now) by the given amounts, and
   * resolves once every move has been observed as a layout shift.
   */
  window.shiftAt = (plan) =>
    Promise.all(plan.map(([at, dy]) => new Promise((r) => setTimeout(r, at)).then(() => window.shift(dy))));

  addEventListener('DOMContentLoaded', () => {
    document.getElementById('shift-button')?.addEventListener('click', () => move(120));
  });

  const early = new URLSearchParams(location.search).get('early');
  if (early) {
    for (const at of early.split(',').map(Number)) setTimeout(() => move(offset ? -100 : 100), at);
  }
})();

// The single-page app of spa.html (a classic script: runs before spa.js).
// A click on a nav link changes the route: history.pushState (or
// replaceState for links with data-replace) and new content in <main>, so
// that Chromium reports a soft navigation. window.__busy.click = [ms, ...]
// makes the next clicks busy-wait (slow interactions). window.shift(dy)
// moves #block (a layout shift, not after input) and resolves once observed.
(() => {
  const busy = (window.__busy = { click: [] });
  let n = 0;
  const wait = (ms) => {
    const end = performance.now() + ms;
    while (performance.now() < end) {
      // busy-wait: a long event handler
    }
  };
  const route = (a) => {
    n++;
    const url = a.getAttribute('href');
    if ('replace' in a.dataset) history.replaceState({ n }, '', url);
    else history.pushState({ n }, '', url);
    document.getElementById('main').innerHTML = `<h1>${a.textContent} (${n})</h1><p class="big">Route ${n}: ${url}, rendered by script.</p>`;
  };
  addEventListener('DOMContentLoaded', () => {
    for (const a of document.querySelectorAll('nav a')) {
      a.addEventListener('click', (e) => {
        e.preventDefault();
        wait(busy.click.shift() || 0);
        route(a);
      });
    }
    document.getElementById('slow').addEventListener('click', () => {
      wait(busy.click.shift() || 0);
      document.getElementById('block').textContent = `clicked ${++n}`;
    });
  });

  const softNavs = (window.__softNavs = []);
  const shifts = (window.__shifts = []);
  try {
    new PerformanceObserver((l) => softNavs.push(...l.getEntries().map((e) => ({ name: e.name, navigationId: e.navigationId, interactionId: e.interactionId, startTime: e.startTime }))))
      .observe({ type: 'soft-navigation', buffered: true });
  } catch {}
  new PerformanceObserver((l) => shifts.push(...l.getEntries().map((e) => ({ startTime: e.startTime, value: e.value, hadRecentInput: e.hadRecentInput }))))
    .observe({ type: 'layout-shift', buffered: true });
  let offset = 0;
  window.shift = (dy = 100) => {
    const before = shifts.length;
    offset += dy;
    document.getElementById('block').style.top = `${offset}px`;
    return new Promise((resolve, reject) => {
      const t0 = performance.now();
      const poll = () => {
        if (shifts.length > before) resolve(shifts[shifts.length - 1]);
        else if (performance.now() - t0 > 5000) reject(new Error('no layout shift observed'));
        else setTimeout(poll, 10);
      };
      poll();
    });
  };
  /** Resolves once `count` soft navigations were observed. */
  window.__softNavsSeen = async (count) => {
    const t0 = performance.now();
    while (softNavs.length < count) {
      if (performance.now() - t0 > 5000) throw new Error(`${softNavs.length} soft navigations, not ${count}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    // The libraries process entries in observer tasks and idle callbacks.
    await new Promise((r) => setTimeout(r, 0));
    await new Promise((r) => requestIdleCallback(r, { timeout: 1000 }));
  };
})();

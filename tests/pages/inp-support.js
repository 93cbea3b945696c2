// Helpers for the INP parity pages (a classic script: runs before parity.js).
// Handlers busy-wait durations queued per event type by the test:
// window.__busy.click = [150, 0, ...] (ms, consumed one per event).
// Every handled event also changes the DOM so that a frame is painted.
(() => {
  const busy = (window.__busy = { click: [], pointerdown: [], pointerup: [], keydown: [] });
  let n = 0;
  // The timeStamp (= the Event Timing entry's startTime) of the last event
  // whose handler busy-waited at least 16 ms (so that an entry is observed).
  let lastSlow = -1;
  const handle = (e) => {
    const ms = busy[e.type].shift() || 0;
    if (ms >= 16) lastSlow = e.timeStamp;
    const end = performance.now() + ms;
    while (performance.now() < end) {
      // busy-wait: a long event handler
    }
    document.getElementById('out').textContent = `${++n} ${e.type}`;
  };
  addEventListener('DOMContentLoaded', () => {
    const button = document.getElementById('button');
    for (const t of ['click', 'pointerdown', 'pointerup']) button.addEventListener(t, handle);
    document.addEventListener('keydown', handle);
  });

  // Our own view of the interactions (entries of >= 16 ms, the browser's
  // minimum), to know when the libraries have seen them.
  const interactions = (window.__interactions = new Map());
  let lastSeen = -1;
  const record = (list) => {
    for (const e of list.getEntries()) {
      lastSeen = Math.max(lastSeen, e.startTime);
      if (!e.interactionId) continue;
      interactions.set(e.interactionId, Math.max(interactions.get(e.interactionId) || 0, e.duration));
    }
  };
  const po = new PerformanceObserver(record);
  po.observe({ type: 'event', buffered: true, durationThreshold: 16 });
  po.observe({ type: 'first-input', buffered: true });

  /** Latencies of the interactions seen so far (>= 16 ms), longest first. */
  window.__latencies = () => [...interactions.values()].sort((a, b) => b - a);

  /**
   * Resolves once the entry of the last slow event (busy >= 16 ms) was
   * observed and the idle callbacks queued by observers on it have run (the
   * libraries process event entries in an idle callback).
   */
  window.__settle = async () => {
    const t0 = performance.now();
    while (lastSeen < lastSlow - 0.5) {
      if (performance.now() - t0 > 10000) throw new Error('the last slow event was not observed');
      await new Promise((r) => setTimeout(r, 20));
    }
    // All observers got that entry in one task; once it is over, the
    // libraries' idle callbacks are queued ahead of ours.
    await new Promise((r) => setTimeout(r, 0));
    await new Promise((r) => requestIdleCallback(r, { timeout: 1000 }));
  };
})();

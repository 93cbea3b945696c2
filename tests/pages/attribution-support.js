// The attribution page's own work (a classic script with a query string in
// its URL, which beacons must not carry): the delayed LCP image, the layout
// shifts, and a slow click handler named slowClick.
(() => {
  const q = new URLSearchParams(location.search);
  if (q.get('image')) {
    addEventListener('DOMContentLoaded', () => {
      const img = new Image(600, 300);
      Object.assign(img, { src: '/pages/img/lcp-blocks.png?delay=300&img=attr', alt: '' });
      document.querySelector('.hero').append(img);
    });
  }
  window.__shift = (px) => {
    document.getElementById('shifting').style.left = `${px}px`;
  };
  let n = 0;
  function slowClick() {
    const end = performance.now() + Number(q.get('busy') || 150);
    while (performance.now() < end) {
      // busy-wait: a long event handler
    }
    document.getElementById('out').textContent = String(++n);
  }
  addEventListener('DOMContentLoaded', () => {
    document.querySelector('button.slow').addEventListener('click', slowClick);
  });
})();

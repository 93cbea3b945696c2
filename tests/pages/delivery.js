// Query: opts=<JSON of init() options>; pageKey=1 installs a pageKey callback;
// beforeSend=drop|tag installs a beforeSend hook; src=<module URL of the agent>
// (default /agent/index.js, e.g. an npm-packed copy); path=<path?query> makes
// the page's URL that (history.replaceState) before the agent starts.
const q = new URLSearchParams(location.search);
const opts = JSON.parse(q.get('opts') || '{}');
if (q.get('path')) history.replaceState(null, '', q.get('path'));
if (q.get('pageKey')) opts.pageKey = (url) => new URL(url).origin + '/custom-key';
if (q.get('beforeSend') === 'drop') opts.beforeSend = () => null;
if (q.get('beforeSend') === 'tag') opts.beforeSend = (b) => { b.pageViewId = 'tagged-' + b.pageViewId; };
const vs = await import(q.get('src') || '/agent/index.js');
window.__vs = vs;
vs.init(opts);
window.__isReady = await vs.loaded();

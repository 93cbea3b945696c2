// The collector's read API, with the API key asked for once (on the first
// 401) and kept in sessionStorage for this tab, sent as a Bearer token.

const KEY = 'vitalsign.apiKey';

export class ApiError extends Error {
  constructor(status, message, path) {
    super(message);
    this.status = status;
    this.path = path;
  }
}

let prompt = null;
// Set when the reader closes the dialog without a key: later 401s fail
// at once (no dialog every 30 s) until allowKeyPrompt() is called.
let declined = false;

export function allowKeyPrompt() {
  declined = false;
}

function storedKey() {
  try { return sessionStorage.getItem(KEY); } catch { return null; }
}

/** Asks for a key (one dialog, however many requests wait for it). */
function askForKey(refused) {
  if (prompt) return prompt;
  const dialog = document.getElementById('key-dialog');
  const input = document.getElementById('key-input');
  document.getElementById('key-message').textContent = refused
    ? 'The collector refused that key. Enter another one (kept for this browser tab only).'
    : "This collector's read API needs a key. It is kept for this browser tab only (sessionStorage).";
  input.value = '';
  prompt = new Promise((resolve, reject) => {
    dialog.addEventListener('close', () => {
      prompt = null;
      const key = input.value.trim();
      input.value = '';
      if (dialog.returnValue === 'ok' && key) {
        try { sessionStorage.setItem(KEY, key); } catch { /* private mode: keep it in memory below */ }
        memoryKey = key;
        resolve();
      } else {
        declined = true;
        reject(new ApiError(401, 'This collector needs an API key to show its data.'));
      }
    }, { once: true });
    dialog.returnValue = '';
    dialog.showModal();
    input.focus();
  });
  return prompt;
}

let memoryKey = null;

/** GET (or POST with a JSON body) an API path; resolves to the parsed JSON. */
export async function api(path, { method = 'GET', body, signal } = {}) {
  for (;;) {
    const key = storedKey() || memoryKey;
    const headers = { Accept: 'application/json' };
    if (key) headers.Authorization = `Bearer ${key}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      signal,
    });
    if (res.status === 401) {
      const now = storedKey() || memoryKey;
      // Another request may have been answered with a new key meanwhile.
      if (now && now !== key) continue;
      if (declined) throw new ApiError(401, 'This collector needs an API key to show its data.', path);
      await askForKey(Boolean(key));
      continue;
    }
    const text = await res.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
    if (!res.ok) {
      const message = (json && json.error) || text || res.statusText;
      throw new ApiError(res.status, message, path);
    }
    return json;
  }
}

/** A query string from an object, without empty values. */
export function qs(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v == null || v === '') continue;
    q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

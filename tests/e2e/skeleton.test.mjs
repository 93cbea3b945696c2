// Walking skeleton: FCP measured in a real browser by our agent and by
// web-vitals on the same page load, beaconed to the real collector, and
// read back from its summary.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Ajv2020 from 'ajv/dist/2020.js';
import { openPage, stubVisibility, waitFor, reports, schema, useBrowserAndSite } from './harness.mjs';

let browser, site, collector;

useBrowserAndSite((env) => ({ browser, site, collector } = env), { collector: true });

const strip = ({ id, ...rest }) => rest;

test('FCP equals web-vitals and reaches the collector summary', async () => {
  const endpoint = `${collector.url}/v1/beacon`;
  const { page, context, errors } = await openPage(browser, `${site.url}/pages/parity.html?metrics=FCP&beacon=${encodeURIComponent(endpoint)}`);
  const r = await waitFor(async () => {
    const r = await reports(page);
    return r.wv.length && r.vs.length && r;
  }, { what: 'FCP from both libraries' });
  assert.equal(r.vs.length, 1);
  assert.deepEqual(r.vs.map(strip), r.wv.map(strip));
  const fcp = r.vs[0];
  assert.equal(fcp.name, 'FCP');
  assert.ok(fcp.value > 0, 'FCP is positive');
  assert.equal(fcp.delta, fcp.value);
  assert.equal(fcp.entries, 1);
  assert.match(fcp.id, /^vs-\d+-\d{13}$/);

  await stubVisibility(page, 'hidden');
  const pageKey = `${site.url}/pages/parity.html`;
  const summary = await waitFor(async () => {
    const s = await collector.summary();
    return s.pages.find((p) => p.page === pageKey && p.metrics.FCP) && s;
  }, { what: 'FCP in the collector summary' });
  const row = summary.pages.find((p) => p.page === pageKey);
  assert.equal(row.metrics.FCP.count, 1);
  assert.equal(row.metrics.FCP.p75, fcp.value);
  assert.deepEqual(errors, []);
  await context.close();
});

test('the beacon is text/plain JSON valid against beacon.schema.json', async () => {
  const { page, context, errors } = await openPage(browser, `${site.url}/pages/parity.html?metrics=FCP&beacon=/beacon`);
  await waitFor(async () => (await reports(page)).vs.length, { what: 'FCP' });
  await stubVisibility(page, 'hidden');
  const b = await waitFor(() => site.beacons.find((b) => b.json?.metrics?.some((m) => m.name === 'FCP')), { what: 'a beacon' });
  assert.equal(b.contentType, 'text/plain;charset=UTF-8');
  const validate = new Ajv2020({ allErrors: true }).compile(schema);
  assert.ok(validate(b.json), JSON.stringify(validate.errors));
  assert.equal(b.json.page, `${site.url}/pages/parity.html`, 'no query string in the page key');
  const fcp = (await reports(page)).vs[0];
  const sent = b.json.metrics.find((m) => m.name === 'FCP');
  assert.deepEqual(
    { name: sent.name, value: sent.value, delta: sent.delta, id: sent.id, rating: sent.rating, navigationType: sent.navigationType },
    { name: fcp.name, value: fcp.value, delta: fcp.delta, id: sent.id, rating: fcp.rating, navigationType: fcp.navigationType },
  );
  assert.deepEqual(errors, []);
  await context.close();
});

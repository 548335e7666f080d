// The browser reaches a real berth serve at all: the infrastructure every other test stands on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startBerth, launchBrowser } from '../lib/berth.mjs';

test('chromium loads a page from berth serve', async () => {
  const berth = await startBerth();
  const browser = await launchBrowser();
  try {
    assert.ok(berth.adminPassword, 'the first start prints the admin password');
    const page = await browser.newPage();
    const response = await page.goto(`${berth.url}/healthz`);
    assert.equal(response.status(), 200);
    assert.equal((await page.textContent('body')).trim(), 'ok');
  } finally {
    await browser.close();
    await berth.stop();
  }
});

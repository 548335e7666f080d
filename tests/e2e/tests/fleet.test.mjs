// The fleet pages in a real browser, against the SSH test machines: Berth syncs an inventory
// repository (made here with the `git` binary) of m1, m2 and m3, where known_hosts knows only
// m1. The admin opens the fleet page, opens m2, adds its key and clicks Verify, and trusts m3's
// key from its page; each badge changes without a reload (the page's SSE stream).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBerth, launchBrowser, screenshot, signIn } from '../lib/berth.mjs';
import { HOW_TO, inventory, knownHosts, lab } from '../lib/fleet.mjs';

test('an admin verifies a machine and trusts a host key, and the badges change live', async (t) => {
  const machines = lab();
  if (!machines) {
    t.skip(`no SSH test machines (BERTH_TEST_MACHINES is not set): ${HOW_TO}`);
    return;
  }
  const [m1, m2, m3] = ['m1', 'm2', 'm3'].map((name) => machines.machines.get(name));
  const root = mkdtempSync(join(tmpdir(), 'berth-e2e-fleet-'));
  const { repository, keys } = inventory(root, [m1, m2, m3], machines.key);
  const berth = await startBerth({
    fleet: { repository, keys_dir: keys, connect_timeout: '20s', connect_retries: 0 },
    // The admin has m1's key; m2 and m3 are new to Berth.
    beforeFleet(home) {
      mkdirSync(join(home, 'fleet'), { mode: 0o700 });
      writeFileSync(join(home, 'fleet/known_hosts'), knownHosts([m1]), { mode: 0o600 });
    },
  });
  const browser = await launchBrowser();
  try {
    const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    await signIn(page, berth, 'admin', berth.adminPassword);
    await page.click('nav a[href="/admin/fleet"]');
    await page.waitForURL(`${berth.url}/admin/fleet`);
    // The sync at start-up and the first checks arrive over the stream.
    const badge = (id, status) => page.locator(`#machines tr.machine[data-id="${id}"] .badge.enrollment[data-status=${status}]`);
    await badge('m1', 'enrolled').waitFor({ timeout: 60_000 });
    await badge('m2', 'host_key_unknown').waitFor({ timeout: 60_000 });
    await badge('m3', 'host_key_unknown').waitFor({ timeout: 60_000 });
    assert.match(await page.textContent('#last-sync'), /succeeded/);
    await screenshot(page, 'fleet');

    // Filters are the address's query: only the machines whose key is unknown.
    await page.selectOption('#filters select[name=enrollment]', 'host_key_unknown');
    await Promise.all([page.waitForURL(/enrollment=host_key_unknown/), page.click('#filters button[type=submit]')]);
    assert.deepEqual(
      await page.locator('#machines tr.machine').evaluateAll((rows) => rows.map((r) => r.dataset.id)),
      ['m2', 'm3'],
    );

    // m2: the admin adds its key to known_hosts, then clicks Verify.
    await Promise.all([page.waitForURL(`${berth.url}/admin/fleet/machines/m2`), page.click('#machines a[href="/admin/fleet/machines/m2"]')]);
    const status = page.locator('#enrollment .badge.enrollment');
    assert.equal(await status.getAttribute('data-status'), 'host_key_unknown');
    assert.match(await page.textContent('#fingerprint'), /^SHA256:/);
    await screenshot(page, 'machine');
    writeFileSync(join(berth.home, 'fleet/known_hosts'), knownHosts([m1, m2]));
    let navigations = 0;
    page.on('framenavigated', (frame) => { if (frame === page.mainFrame()) navigations += 1; });
    await page.evaluate(() => { window.berthStayed = true; });
    await page.click('#enrollment button:has-text("Verify")');
    await page.locator('#enrollment .badge.enrollment[data-status=enrolled]').waitFor({ timeout: 30_000 });
    assert.equal(await page.evaluate(() => window.berthStayed), true, 'the page was not reloaded');
    assert.equal(navigations, 0);
    assert.equal(await page.locator('#trust').count(), 0, 'an enrolled machine has nothing to trust');

    // m3: the admin compares the fingerprint and trusts it (a confirmation first).
    await page.goto(`${berth.url}/admin/fleet/machines/m3`);
    const fingerprint = (await page.textContent('#fingerprint')).trim();
    let asked = '';
    page.once('dialog', (dialog) => { asked = dialog.message(); dialog.accept(); });
    await page.evaluate(() => { window.berthStayed = true; });
    await page.click('#trust button');
    await page.locator('#enrollment .badge.enrollment[data-status=enrolled]').waitFor({ timeout: 30_000 });
    assert.ok(asked.includes(fingerprint), `the confirmation names the key: ${asked}`);
    assert.equal(await page.evaluate(() => window.berthStayed), true, 'the page was not reloaded');
    assert.equal(await page.locator('#flash').isHidden(), true);

    // The fleet page, every machine enrolled now.
    await page.goto(`${berth.url}/admin/fleet?sort=id&desc=true`);
    assert.deepEqual(
      await page.locator('#machines tr.machine .badge.enrollment').evaluateAll((b) => b.map((e) => e.dataset.status)),
      ['enrolled', 'enrolled', 'enrolled'],
    );
    assert.deepEqual(
      await page.locator('#machines tr.machine').evaluateAll((rows) => rows.map((r) => r.dataset.id)),
      ['m3', 'm2', 'm1'],
    );
  } finally {
    await browser.close();
    await berth.stop();
    rmSync(root, { recursive: true, force: true });
  }
});

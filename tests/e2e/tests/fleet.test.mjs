// The fleet pages in a real browser, against the SSH test machines: Berth syncs an inventory
// repository (made here with the `git` binary) of m1, m2 and m3, where known_hosts knows only
// m1. The admin opens the fleet page, opens m2, adds its key and clicks Verify, and trusts m3's
// key from its page; each badge changes without a reload (the page's SSE stream).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBerth, launchBrowser, screenshot, signIn } from '../lib/berth.mjs';

const HOW_TO = 'start the SSH test machines (scripts/test-machines.sh, or run through scripts/with-test-env.sh / make test)';

/** The SSH test machines of $BERTH_TEST_MACHINES (name host port user host_key client_id jump),
 * or null when they are not set up (a failure under CI). */
function lab() {
  const list = process.env.BERTH_TEST_MACHINES;
  const keys = process.env.BERTH_TEST_SSH_KEYS;
  if (!list || !keys) {
    if (process.env.CI === 'true') throw new Error(`BERTH_TEST_MACHINES / BERTH_TEST_SSH_KEYS are not set: ${HOW_TO}`);
    return null;
  }
  const machines = new Map();
  for (const line of readFileSync(list, 'utf8').split('\n').filter((l) => l.trim())) {
    const [name, host, port, user, hostKey, clientId, jump] = line.split('\t');
    machines.set(name, { name, host, port: Number(port), user, hostKey, clientId, jump });
  }
  return { machines, key: join(keys, 'id_ed25519') };
}

function knownHosts(machines) {
  return machines.map((m) => `${m.port === 22 ? m.host : `[${m.host}]:${m.port}`} ${m.hostKey}\n`).join('');
}

function git(dir, ...args) {
  execFileSync('git', ['-C', dir, ...args], {
    env: {
      ...process.env,
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_CONFIG_GLOBAL: '/dev/null',
      GIT_AUTHOR_NAME: 'Ops',
      GIT_AUTHOR_EMAIL: 'ops@example.invalid',
      GIT_COMMITTER_NAME: 'Ops',
      GIT_COMMITTER_EMAIL: 'ops@example.invalid',
    },
  });
}

/** An inventory repository with the machines, and a keys dir with the test client key. */
function inventory(root, machines, key) {
  const repo = join(root, 'inventory');
  mkdirSync(repo);
  git(repo, 'init', '--quiet', '--initial-branch=main');
  const links = machines.map((m) => [
    `  - id: ${m.name}`,
    `    name: ${m.name}`,
    `    host: ${m.host}`,
    `    port: ${m.port}`,
    `    user: ${m.user}`,
    '    key: id_ed25519',
    '    type: lab',
    '    tags: [lab]',
    `    client_id: ${m.clientId}`,
    `    description: SSH test machine ${m.name}`,
  ].join('\n'));
  writeFileSync(join(repo, 'links.yaml'), `machines:\n${links.join('\n')}\n`);
  git(repo, 'add', '--all');
  git(repo, 'commit', '--quiet', '-m', 'the test machines');
  const keys = join(root, 'keys');
  mkdirSync(keys, { mode: 0o700 });
  copyFileSync(key, join(keys, 'id_ed25519'));
  chmodSync(join(keys, 'id_ed25519'), 0o600);
  return { repository: `file://${repo}`, keys };
}

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

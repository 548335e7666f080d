// Operations in a real browser, against the SSH test machines m1 and m2 (both in known_hosts,
// so enrolled by the checks after the start-up sync). The admin runs a script that prints a line
// every 0.3 s from the run form, whose count follows the choice of targets; the operation's page
// shows the lines as they arrive, without a reload, then the final status and the grouped
// view. A long script is stopped from its page and ends `cancelled`.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBerth, launchBrowser, screenshot, signIn } from '../lib/berth.mjs';
import { HOW_TO, inventory, knownHosts, lab } from '../lib/fleet.mjs';

const TICKS = 12;

const SCRIPTS = {
  'scripts.yaml': `scripts:
  - name: ticker
    description: prints a line every 0.3 s
    file: ticker.sh
    timeout: 1m
  - name: long
    description: waits for a long time
    file: long.sh
    timeout: 10m
  - name: flood
    file: flood.sh
`,
  'ticker.sh': `#!/bin/bash\nfor i in $(seq 1 ${TICKS}); do echo "tick $i"; sleep 0.3; done\necho 'done <b>here</b>' >&2\n`,
  'long.sh': '#!/bin/bash\necho started\nsleep 3141 &\nwait\n',
  // 300 000 characters on one line, the last line, then a pause before the end.
  'flood.sh': "#!/bin/bash\nhead -c 300000 /dev/zero | tr '\\0' x\necho\necho last-line\nsleep 2\n",
};

const machines = lab();

describe('operations', { skip: machines ? false : `no SSH test machines (BERTH_TEST_MACHINES is not set): ${HOW_TO}` }, () => {
  let root;
  let berth;
  let browser;
  let page;

  before(async () => {
    const [m1, m2] = ['m1', 'm2'].map((name) => machines.machines.get(name));
    root = mkdtempSync(join(tmpdir(), 'berth-e2e-operations-'));
    const { repository, keys } = inventory(root, [m1, m2], machines.key, SCRIPTS);
    berth = await startBerth({
      fleet: { repository, keys_dir: keys, connect_timeout: '20s', connect_retries: 0 },
      beforeFleet(home) {
        mkdirSync(join(home, 'fleet'), { mode: 0o700 });
        writeFileSync(join(home, 'fleet/known_hosts'), knownHosts([m1, m2]), { mode: 0o600 });
      },
    });
    browser = await launchBrowser();
    page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    await signIn(page, berth, 'admin', berth.adminPassword);
    // The start-up sync and the first checks: both machines enrolled.
    await page.goto(`${berth.url}/admin/fleet`);
    for (const id of ['m1', 'm2']) {
      await page.locator(`#machines tr.machine[data-id="${id}"] .badge.enrollment[data-status=enrolled]`).waitFor({ timeout: 60_000 });
    }
  });

  after(async () => {
    if (browser) await browser.close();
    if (berth) await berth.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('runs a script from the form and shows its output live, then the final status', async () => {
    await page.click('nav a[href="/admin/operations"]');
    await page.waitForURL(`${berth.url}/admin/operations`);
    await Promise.all([page.waitForURL(`${berth.url}/admin/operations/new`), page.click('#run-script')]);
    await page.selectOption('select[name=script]', 'ticker');
    assert.match(await page.textContent('select[name=script] option:checked'), /prints a line every 0\.3 s/);

    // The count follows the targets chosen, without a reload.
    await page.evaluate(() => { window.berthStayed = true; });
    const count = (n) => page.locator(`#count #target-count[data-count="${n}"]`);
    await page.check('input[name=tag][value=lab]');
    await count(2).waitFor();
    assert.match(await page.textContent('#count'), /2 machines: m1, m2/);
    await page.selectOption('select[name=type]', 'lab');
    await count(2).waitFor();
    await page.selectOption('select[name=machine]', ['m2']);
    assert.equal(await page.isChecked('input[name=targets][value=machines]'), true, 'choosing a machine chooses machines');
    await count(1).waitFor();
    await page.check('input[name=targets][value=tags]');
    await count(2).waitFor();
    assert.equal(await page.evaluate(() => window.berthStayed), true, 'the form was not reloaded');
    await screenshot(page, 'run-form');

    await Promise.all([page.waitForURL(/\/admin\/operations\/[0-9a-f-]{36}$/), page.click('#run button[type=submit]')]);
    await page.evaluate(() => { window.berthStayed = true; });
    const stdout = (id) => page.locator(`#per-machine .run[data-machine="${id}"] pre.stdout`);
    // The first lines are there while the script still prints.
    await page.waitForFunction(() => {
      const pre = document.querySelector('#per-machine .run[data-machine="m1"] pre.stdout');
      return pre && pre.textContent.includes('tick 2');
    }, null, { timeout: 30_000 });
    const early = await stdout('m1').textContent();
    assert.ok(!early.includes(`tick ${TICKS}`), `the first lines arrive before the last is printed: ${early}`);
    assert.equal(await page.getAttribute('#status', 'data-status'), 'running');
    assert.equal(await page.getAttribute('#per-machine .run[data-machine="m1"] .run-status', 'data-status'), 'running');

    // The end: the status, each machine's exit, and the page's part rendered again.
    await page.locator('#status[data-status=succeeded]').waitFor({ timeout: 30_000 });
    await page.locator('#grouped').waitFor({ state: 'attached', timeout: 30_000 });
    assert.equal(await page.evaluate(() => window.berthStayed), true, 'the page was not reloaded');
    for (const id of ['m1', 'm2']) {
      const run = page.locator(`#per-machine .run[data-machine="${id}"]`);
      assert.equal(await run.locator('.run-status').getAttribute('data-status'), 'succeeded');
      assert.equal((await run.locator('.ending').textContent()).trim(), 'exit 0');
      const text = await stdout(id).textContent();
      assert.equal(text, Array.from({ length: TICKS }, (_, i) => `tick ${i + 1}\n`).join(''), id);
      // stderr apart, shown as text.
      assert.equal(await run.locator('pre.stderr').textContent(), 'done <b>here</b>\n');
      assert.equal(await run.locator('pre.stderr b').count(), 0);
    }
    assert.equal(await page.locator('#stop').count(), 0, 'nothing left to stop');
    await screenshot(page, 'operation');
    // The grouped view: both printed the same.
    await page.check('input[name=view][value=groups]');
    assert.equal(await page.locator('#per-machine').isVisible(), false);
    assert.equal(await page.locator('#grouped .group').count(), 1);
    assert.match(await page.textContent('#grouped .group h3'), /2 machines/);
  });

  it('stops a long script from its page: cancelled', async () => {
    await page.goto(`${berth.url}/admin/fleet/machines/m1`);
    await Promise.all([page.waitForURL(/\/admin\/operations\/new\?machine=m1$/), page.click('#run-script')]);
    assert.equal(await page.isChecked('input[name=targets][value=machines]'), true);
    await page.locator('#count #target-count[data-count="1"]').waitFor();
    await page.selectOption('select[name=script]', 'long');
    await Promise.all([page.waitForURL(/\/admin\/operations\/[0-9a-f-]{36}$/), page.click('#run button[type=submit]')]);
    const id = page.url().split('/').pop();
    await page.evaluate(() => { window.berthStayed = true; });
    await page.waitForFunction(() => {
      const pre = document.querySelector('#per-machine .run[data-machine="m1"] pre.stdout');
      return pre && pre.textContent.includes('started');
    }, null, { timeout: 30_000 });
    assert.equal(await page.getAttribute('#status', 'data-status'), 'running');

    let asked = '';
    page.once('dialog', (dialog) => { asked = dialog.message(); dialog.accept(); });
    await page.click('#stop button');
    await page.locator('#status[data-status=cancelled]').waitFor({ timeout: 30_000 });
    assert.match(asked, /^Stop long\?/);
    await page.locator('#per-machine .run[data-machine="m1"] .run-status[data-status=cancelled]').waitFor({ timeout: 30_000 });
    await page.locator('#rerun').waitFor({ timeout: 30_000 });
    assert.equal(await page.evaluate(() => window.berthStayed), true, 'the page was not reloaded');
    assert.equal(await page.locator('#flash').isHidden(), true);

    // Rerun: the new operation's page, where it runs again; stopped as well.
    await Promise.all([page.waitForURL((url) => /\/admin\/operations\/[0-9a-f-]{36}$/.test(url.pathname) && !url.pathname.endsWith(id)), page.click('#rerun button')]);
    const rerun = page.url().split('/').pop();
    assert.match(await page.textContent('#summary'), new RegExp(`Reruns\\s*${id}`));
    await page.locator('#status[data-status=running]').waitFor({ timeout: 30_000 });
    page.once('dialog', (dialog) => dialog.accept());
    await page.click('#stop button');
    await page.locator('#status[data-status=cancelled]').waitFor({ timeout: 30_000 });

    // The history: every operation, newest first; filtered by status.
    await page.goto(`${berth.url}/admin/operations`);
    const statuses = await page.locator('#operations tr.operation .operation-status').evaluateAll((b) => b.map((e) => e.dataset.status));
    assert.deepEqual(statuses, ['cancelled', 'cancelled', 'succeeded']);
    await screenshot(page, 'operations');
    await page.selectOption('#filters select[name=status]', 'cancelled');
    await Promise.all([page.waitForURL(/status=cancelled/), page.click('#filters button[type=submit]')]);
    assert.deepEqual(
      await page.locator('#operations tr.operation').evaluateAll((rows) => rows.map((r) => r.dataset.id)),
      [rerun, id],
    );
  });

  it('keeps the last 200 KB of a stream in the page while it runs', async () => {
    await page.goto(`${berth.url}/admin/operations/new?machine=m1&script=flood`);
    await Promise.all([page.waitForURL(/\/admin\/operations\/[0-9a-f-]{36}$/), page.click('#run button[type=submit]')]);
    const pre = '#per-machine .run[data-machine="m1"] pre.stdout';
    await page.waitForFunction((selector) => {
      const out = document.querySelector(selector);
      return out && out.textContent.includes('last-line');
    }, pre, { timeout: 30_000 });
    assert.equal(await page.getAttribute('#status', 'data-status'), 'running');
    const kept = await page.$eval(pre, (out) => ({ length: out.textContent.length, trimmed: out.hasAttribute('data-trimmed'), end: out.textContent.slice(-12) }));
    assert.equal(kept.length, 200 * 1024);
    assert.equal(kept.trimmed, true);
    assert.equal(kept.end, 'x\nlast-line\n');
    // Once it ended, the page shows what the server kept (fleet.max_output), all of it.
    await page.locator('#status[data-status=succeeded]').waitFor({ timeout: 30_000 });
    await page.locator('#grouped').waitFor({ state: 'attached', timeout: 30_000 });
    assert.equal(await page.$eval(pre, (out) => out.textContent.length), 300_000 + '\nlast-line\n'.length);
  });
});

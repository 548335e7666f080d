// A grid of machines and workspaces in a real browser: ann may reach the SSH test machines m1
// and m2 (her users.yaml selectors) and has two workspaces. Her 2x2 grid shows m1, a workspace,
// m2 and the other workspace; connect-all opens the four sessions at once, the page takes
// them, each pane answers its own command in its own pane, and with broadcast typing on one
// command reaches all four. The screenshot goes to screenshots/machine-grid.png.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBerth, launchBrowser, screenshot, api, login, signIn, waitFor, lab as labSetup } from '../lib/berth.mjs';
import { HOW_TO, inventory, knownHosts, lab } from '../lib/fleet.mjs';

const paneRows = (pane) => `#berth-grid .berth-pane[data-pane="${pane}"] .xterm-rows`;

async function paneShows(page, pane, text) {
  await page.waitForFunction(
    ([selector, want]) => document.querySelector(selector)?.textContent.includes(want),
    [paneRows(pane), text],
    { timeout: 30_000 },
  );
}

test('a 2x2 grid of two machines and two workspaces: each pane its own, then broadcast typing to all', async (t) => {
  const machines = lab();
  if (!machines) {
    t.skip(`no SSH test machines (BERTH_TEST_MACHINES is not set): ${HOW_TO}`);
    return;
  }
  const [m1, m2] = ['m1', 'm2'].map((name) => machines.machines.get(name));
  const root = mkdtempSync(join(tmpdir(), 'berth-e2e-mgrid-'));
  const { repository, keys } = inventory(root, [m1, m2], machines.key);
  const berth = await startBerth({
    fleet: { repository, keys_dir: keys, connect_timeout: '20s' },
    beforeFleet(home) {
      mkdirSync(join(home, 'fleet'), { mode: 0o700 });
      writeFileSync(join(home, 'fleet/known_hosts'), knownHosts([m1, m2]), { mode: 0o600 });
    },
  });
  const browser = await launchBrowser();
  try {
    const { admin } = await labSetup(berth, []);
    await api(berth, 'POST', '/api/v1/users', admin, {
      username: 'ann', password: 'ann-password-1', templates: ['lab'], machines: ['m1', 'm2'],
    });
    const ann = await login(berth, 'ann', 'ann-password-1');
    // Both machines enrolled (the start-up sync, then a check now).
    await waitFor('the inventory to be synced', async () =>
      (await api(berth, 'GET', '/api/v1/machines', admin)).machines.length === 2, { timeout: 60_000 });
    await api(berth, 'POST', '/api/v1/machines/verify', admin);
    for (const id of ['m1', 'm2']) {
      const machine = await api(berth, 'GET', `/api/v1/machines/${id}`, ann);
      assert.equal(machine.enrollment.status, 'enrolled', JSON.stringify(machine.enrollment));
    }
    const workspaces = [];
    for (let i = 0; i < 2; i++) {
      const { id } = await api(berth, 'POST', '/api/v1/workspaces', ann, { template: 'lab' });
      await waitFor(`workspace ${id} to run`, async () =>
        (await api(berth, 'GET', `/api/v1/workspaces/${id}`, ann)).state === 'running', { timeout: 60_000 });
      workspaces.push(id);
    }

    // Panes: a machine, a workspace by its plain id, a machine, a workspace as an object.
    const created = await api(berth, 'POST', '/api/v1/grids', ann, { layout: 'grid2x2' });
    const grid = await api(berth, 'PUT', `/api/v1/grids/${created.id}/panes`, ann, {
      panes: [{ machine: 'm1' }, workspaces[0], { machine: 'm2' }, { workspace: workspaces[1] }],
    });
    assert.deepEqual(grid.panes, [{ machine: 'm1' }, workspaces[0], { machine: 'm2' }, workspaces[1]]);
    const all = await api(berth, 'POST', `/api/v1/grids/${grid.id}/connect-all`, ann);
    assert.deepEqual(all.panes.map((p) => p.state), ['connected', 'connected', 'connected', 'connected'],
      JSON.stringify(all.panes));
    assert.equal(all.panes[0].title, `${m1.user}@m1`);

    const page = await (await browser.newContext({ viewport: { width: 1280, height: 860 } })).newPage();
    const errors = [];
    page.on('pageerror', (err) => errors.push(err.message));
    await signIn(page, berth, 'ann', 'ann-password-1');
    assert.equal((await page.goto(`${berth.url}${grid.page_url}`)).status(), 200);
    for (const pane of [0, 1, 2, 3]) {
      await page.waitForSelector(`.berth-pane[data-pane="${pane}"][data-state=connected]`, { timeout: 30_000 });
    }
    assert.equal(await page.textContent('.berth-pane[data-pane="0"] .berth-pane-title'), `${m1.user}@m1`);
    assert.equal(await page.textContent('.berth-pane[data-pane="2"] .berth-pane-title'), `${m2.user}@m2`);
    assert.match(await page.textContent('.berth-pane[data-pane="1"] .berth-pane-title'), /ann@lab/);

    // Each pane answers its own command in its own pane.
    const answers = ['pane-2', 'pane-4', 'pane-6', 'pane-8'];
    for (const pane of [0, 1, 2, 3]) {
      await page.click(`.berth-pane[data-pane="${pane}"] .berth-pane-screen`);
      await page.keyboard.type(`echo pane-$((${pane + 1}*2))`);
      await page.keyboard.press('Enter');
      await paneShows(page, pane, answers[pane]);
    }
    for (const pane of [0, 1, 2, 3]) {
      const text = await page.textContent(paneRows(pane));
      for (const [other, answer] of answers.entries()) {
        if (other !== pane) assert.ok(!text.includes(answer), `pane ${other}'s ${answer} is in pane ${pane}: ${text}`);
      }
    }

    // Broadcast typing: off until the toggle, then one command reaches all four panes.
    assert.equal(await page.isChecked('#berth-broadcast'), false);
    await page.waitForSelector('#berth-grid[data-broadcast=off]');
    await page.check('#berth-broadcast');
    await page.waitForSelector('#berth-grid[data-broadcast=on]', { timeout: 10_000 });
    await page.click('.berth-pane[data-pane="1"] .berth-pane-screen');
    await page.keyboard.type('echo all-$((6*7))');
    await page.keyboard.press('Enter');
    for (const pane of [0, 1, 2, 3]) await paneShows(page, pane, 'all-42');
    await screenshot(page, 'machine-grid');
    assert.deepEqual(errors, []);

    // Closing the page ends every pane's session: nobody is connected to the workspaces.
    await page.close();
    for (const id of workspaces) {
      await waitFor(`ann to leave workspace ${id}`, async () =>
        (await api(berth, 'GET', `/api/v1/workspaces/${id}/members`, ann)).connected.length === 0);
    }
  } finally {
    await browser.close();
    await berth.stop();
  }
});

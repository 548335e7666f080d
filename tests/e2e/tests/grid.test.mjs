// The grid page: a user puts two workspaces into a grid through the API, opens /g/{id}, types a
// different command into each pane and reads each answer back from its own pane only. Closing
// the page must end the grid's shells in the containers. The screenshot goes to
// screenshots/grid.png (and docs/images/ with BERTH_DOCS_IMAGES=1).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { startBerth, launchBrowser, screenshot, api, signIn, waitFor, lab } from '../lib/berth.mjs';

/** The id of the container of workspace `id` (its label `berth.workspace`). */
function containerOf(id) {
  const ids = execFileSync('docker', ['ps', '-q', '--filter', `label=berth.workspace=${id}`])
    .toString().split(/\s+/).filter(Boolean);
  assert.equal(ids.length, 1, `one running container for workspace ${id}: ${ids}`);
  return ids[0];
}

/** The processes running in `container`, as [pid, command name] pairs (pids as the container sees them). */
function processes(container) {
  return execFileSync('docker', ['exec', container, 'ps', '-e', '-o', 'pid=,comm='])
    .toString().trim().split('\n')
    .map((line) => line.trim().split(/\s+/, 2))
    .map(([pid, comm]) => [Number(pid), comm]);
}

const rows = (page, pane) => page.textContent(`#berth-grid .berth-pane[data-pane="${pane}"] .xterm-rows`);

test('a grid shows two workspaces side by side, each pane its own shell', async () => {
  const berth = await startBerth();
  const browser = await launchBrowser();
  try {
    const { ann } = await lab(berth);
    const workspaces = [];
    for (let i = 0; i < 2; i++) {
      const { id } = await api(berth, 'POST', '/api/v1/workspaces', ann, { template: 'lab' });
      await waitFor(`workspace ${id} to run`, async () =>
        (await api(berth, 'GET', `/api/v1/workspaces/${id}`, ann)).state === 'running', { timeout: 60_000 });
      workspaces.push(id);
    }

    // Made with one layout, then given its panes and a bigger layout: slots 2 and 3 stay empty.
    const created = await api(berth, 'POST', '/api/v1/grids', ann, { layout: 'grid2x1' });
    assert.equal(created.layout, 'grid2x1');
    assert.deepEqual(created.panes, []);
    const grid = await api(berth, 'PUT', `/api/v1/grids/${created.id}/panes`, ann, {
      layout: 'grid2x2', panes: workspaces,
    });
    assert.equal(grid.layout, 'grid2x2');
    assert.deepEqual(grid.panes, workspaces);
    assert.equal(grid.page_url, `/g/${created.id}`);

    const page = await (await browser.newContext({ viewport: { width: 1200, height: 760 } })).newPage();
    const errors = [];
    page.on('pageerror', (err) => errors.push(err.message));
    await signIn(page, berth, 'ann', 'ann-password-1');
    const response = await page.goto(`${berth.url}${grid.page_url}`);
    assert.equal(response.status(), 200);

    // The layout: four slots, the two panes on the top row (pane 0 left of pane 1), two empty
    // slots below them.
    await page.waitForSelector('#berth-grid[data-layout-applied=grid2x2]', { timeout: 10_000 });
    assert.equal(await page.locator('#berth-grid > .berth-pane').count(), 4);
    assert.equal(await page.locator('#berth-grid > .berth-pane.berth-pane-empty').count(), 2);
    const box = async (selector) => {
      const b = await page.locator(selector).boundingBox();
      assert.ok(b && b.width > 100 && b.height > 100, `${selector} is drawn: ${JSON.stringify(b)}`);
      return b;
    };
    const [pane0, pane1] = [await box('.berth-pane[data-pane="0"]'), await box('.berth-pane[data-pane="1"]')];
    const empty = await box('.berth-pane-empty >> nth=0');
    assert.equal(pane0.y, pane1.y, 'panes 0 and 1 share the top row');
    assert.ok(pane0.x + pane0.width <= pane1.x, 'pane 0 is left of pane 1');
    assert.ok(empty.y >= pane0.y + pane0.height, 'the empty slots are below');

    // Both panes connect; their titles name the workspace.
    await page.waitForSelector('.berth-pane[data-pane="0"][data-state=connected]', { timeout: 30_000 });
    await page.waitForSelector('.berth-pane[data-pane="1"][data-state=connected]', { timeout: 30_000 });
    for (const pane of [0, 1]) {
      const title = await page.textContent(`.berth-pane[data-pane="${pane}"] .berth-pane-title`);
      assert.match(title, /ann/);
      assert.match(title, /lab/);
    }
    // Each pane's own shell answers its own command; `shell-$$` tells which process it is.
    const commands = ['echo pane-$((1+1)) shell-$$', 'echo pane-$((2+2)) shell-$$'];
    const answers = ['pane-2', 'pane-4'];
    for (const pane of [0, 1]) {
      await page.click(`.berth-pane[data-pane="${pane}"] .berth-pane-screen`);
      await page.keyboard.type(commands[pane]);
      await page.keyboard.press('Enter');
      await page.waitForFunction(
        ([selector, answer]) => document.querySelector(selector)?.textContent.includes(answer),
        [`#berth-grid .berth-pane[data-pane="${pane}"] .xterm-rows`, answers[pane]],
        { timeout: 30_000 },
      );
    }
    const texts = [await rows(page, 0), await rows(page, 1)];
    assert.match(texts[0], /pane-2/);
    assert.doesNotMatch(texts[0], /pane-4/, 'pane 1\'s answer leaked into pane 0');
    assert.match(texts[1], /pane-4/);
    assert.doesNotMatch(texts[1], /pane-2/, 'pane 0\'s answer leaked into pane 1');
    await screenshot(page, 'grid');
    assert.deepEqual(errors, []);

    // The grid's shells run in the containers, and ann shows as connected to both workspaces.
    const containers = workspaces.map(containerOf);
    const shells = texts.map((text) => Number(text.match(/pane-\d shell-(\d+)/)[1]));
    for (const pane of [0, 1]) {
      const running = processes(containers[pane]);
      assert.ok(running.some(([pid, comm]) => pid === shells[pane] && comm === 'bash'),
        `pane ${pane}'s shell ${shells[pane]} runs: ${JSON.stringify(running)}`);
      const members = await api(berth, 'GET', `/api/v1/workspaces/${workspaces[pane]}/members`, ann);
      assert.deepEqual(members.connected, [{ username: 'ann', role: 'owner' }]);
    }

    // Closing the page ends both shells: no bash is left in either container and nobody is
    // connected any more.
    await page.close();
    for (const pane of [0, 1]) {
      await waitFor(`pane ${pane}'s shell ${shells[pane]} to end`, () => {
        const running = processes(containers[pane]);
        const left = running.filter(([pid, comm]) => pid === shells[pane] || comm === 'bash');
        if (left.length === 0) return true;
        throw new Error(`still running: ${JSON.stringify(left)}`);
      });
      await waitFor(`ann to leave workspace ${pane}`, async () =>
        (await api(berth, 'GET', `/api/v1/workspaces/${workspaces[pane]}/members`, ann)).connected.length === 0);
    }
  } finally {
    await browser.close();
    await berth.stop();
  }
});

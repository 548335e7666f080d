// The browser terminal: a user logs in through the form, opens /w/{id}, types a command into
// xterm and reads the shell's answer back from the rendered rows. The screenshot goes to
// screenshots/terminal.png (and docs/images/ with BERTH_DOCS_IMAGES=1).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startBerth, launchBrowser, screenshot, api, lab } from '../lib/berth.mjs';

test('a user types into a workspace terminal in the browser', async () => {
  const berth = await startBerth();
  const browser = await launchBrowser();
  try {
    const { ann } = await lab(berth);
    const workspace = await api(berth, 'POST', '/api/v1/workspaces', ann, { template: 'lab' });

    const page = await (await browser.newContext({ viewport: { width: 1100, height: 640 } })).newPage();
    const errors = [];
    page.on('pageerror', (err) => errors.push(err.message));
    // Anonymous: sent to the login page with the way back in `next`.
    await page.goto(`${berth.url}/w/${workspace.id}`);
    const loginUrl = new URL(page.url());
    assert.equal(loginUrl.pathname, '/login');
    assert.equal(loginUrl.searchParams.get('next'), `/w/${workspace.id}`);
    await page.fill('input[name=username]', 'ann');
    await page.fill('input[name=password]', 'ann-password-1');
    await Promise.all([page.waitForURL((url) => url.pathname !== '/login'), page.click('button[type=submit]')]);
    // The login page may or may not follow `next`; the terminal page is what is tested here.
    await page.goto(`${berth.url}/w/${workspace.id}`);

    await page.waitForSelector('#berth-status[data-state=connected]', { timeout: 30_000 });
    assert.equal(await page.title(), 'ann@lab — Berth');
    await page.click('#berth-terminal');
    await page.keyboard.type('echo hello-$((6*7))');
    await page.keyboard.press('Enter');
    await page.waitForFunction(
      () => document.querySelector('.xterm-rows')?.textContent.includes('hello-42'),
      null,
      { timeout: 30_000 },
    );
    assert.match(await page.textContent('.xterm-rows'), /hello-42/);
    const member = await page.getAttribute('#berth-members li[data-you]', 'data-role');
    assert.equal(member, 'owner');
    await screenshot(page, 'terminal');
    assert.deepEqual(errors, []);

    // The session is recorded: "My recordings" lists it and its replay page loads.
    await page.goto(`${berth.url}/`);
    const replay = page.locator('tr.recording a').first();
    await replay.waitFor({ timeout: 10_000 });
    const href = await replay.getAttribute('href');
    assert.match(href, /^\/recordings\/[0-9a-f-]+$/);
    const response = await page.goto(`${berth.url}${href}`);
    assert.equal(response.status(), 200);
    assert.equal(await page.locator('#berth-replay').count(), 1);
  } finally {
    await browser.close();
    await berth.stop();
  }
});

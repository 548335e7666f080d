// The replay page: a user's browser terminal session is recorded; once it ends, the owner finds
// the recording through the API, plays it on /recordings/{id} and sees what the shell printed,
// hostile HTML included, as text. Another user gets 404; an admin may watch it. The screenshot
// goes to screenshots/replay.png (and docs/images/ with BERTH_DOCS_IMAGES=1).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startBerth, launchBrowser, screenshot, api, request, signIn, waitFor, lab } from '../lib/berth.mjs';

const HOSTILE = '<img src=x onerror=alert(1)><b>bold</b>';

/** A page that records its page errors and dialogs, for the test to assert there were none. */
async function watchedPage(browser) {
  const page = await (await browser.newContext({ viewport: { width: 1100, height: 700 } })).newPage();
  const trouble = { errors: [], dialogs: [] };
  page.on('pageerror', (err) => trouble.errors.push(err.message));
  page.on('dialog', async (dialog) => {
    trouble.dialogs.push(`${dialog.type()}: ${dialog.message()}`);
    await dialog.dismiss();
  });
  return { page, trouble };
}

/** Elements the hostile output would have created had it been parsed as HTML. */
const injected = (page) => page.evaluate(() => document.querySelectorAll('img, b').length);

/** Plays the recording on `page` at 8× and waits until it shows `texts` and has ended. */
async function play(page, texts) {
  await page.waitForSelector('#berth-replay[data-state=ready]', { timeout: 30_000 });
  await page.selectOption('#berth-replay .berth-replay-speed', '8');
  await page.click('#berth-replay .berth-replay-play');
  await page.waitForFunction(
    (wanted) => {
      const rows = document.querySelector('#berth-replay .berth-replay-screen .xterm-rows');
      const shown = (rows?.textContent ?? '').replaceAll('\u00a0', ' ');
      return wanted.every((t) => shown.includes(t));
    },
    texts,
    { timeout: 60_000 },
  );
  await page.waitForSelector('#berth-replay[data-state=ended]', { timeout: 60_000 });
}

test('a recorded session replays in the browser for its owner and admins only', async () => {
  const berth = await startBerth();
  const browser = await launchBrowser();
  try {
    const { ann, bob } = await lab(berth, ['ann', 'bob']);
    const workspace = await api(berth, 'POST', '/api/v1/workspaces', ann, { template: 'lab' });

    // The session to record: a sum, then hostile HTML. The terminal shows both as text.
    const { page: terminal, trouble: terminalTrouble } = await watchedPage(browser);
    await signIn(terminal, berth, 'ann', 'ann-password-1');
    await terminal.goto(`${berth.url}/w/${workspace.id}`);
    await terminal.waitForSelector('#berth-status[data-state=connected]', { timeout: 30_000 });
    await terminal.click('#berth-terminal');
    await terminal.keyboard.type('echo replay-$((6*7))');
    await terminal.keyboard.press('Enter');
    await terminal.keyboard.type(`printf '${HOSTILE}\\n'`);
    await terminal.keyboard.press('Enter');
    await terminal.waitForFunction(
      () => (document.querySelector('.xterm-rows')?.textContent.match(/<b>bold<\/b>/g) ?? []).length >= 2,
      null,
      { timeout: 30_000 },
    );
    assert.match(await terminal.textContent('.xterm-rows'), /replay-42/);
    assert.equal(await injected(terminal), 0);
    // Closing the page ends the session, which closes its recording.
    await terminal.close();
    assert.deepEqual(terminalTrouble, { errors: [], dialogs: [] });

    const recordings = await waitFor('the recording to be closed', async () => {
      const { recordings } = await api(berth, 'GET', `/api/v1/workspaces/${workspace.id}/recordings`, ann);
      return recordings.length > 0 && recordings.every((r) => r.ended_at) ? recordings : null;
    });
    assert.equal(recordings.length, 1, `one session, one recording: ${JSON.stringify(recordings)}`);
    const [recording] = recordings;
    assert.equal(recording.workspace, workspace.id);
    assert.equal(recording.owner, 'ann');
    assert.equal(recording.username, 'ann');
    assert.ok(recording.bytes > 0);
    assert.equal(recording.cast_url, `/api/v1/recordings/${recording.id}/cast`);

    // The owner plays it; the hostile line is shown as text and creates no element.
    const { page, trouble } = await watchedPage(browser);
    await signIn(page, berth, 'ann', 'ann-password-1');
    const response = await page.goto(`${berth.url}/recordings/${recording.id}`);
    assert.equal(response.status(), 200);
    await play(page, ['replay-42', HOSTILE]);
    assert.equal(await injected(page), 0);
    assert.match(await page.textContent('#berth-replay .berth-replay-title'), /ann/);
    await screenshot(page, 'replay');
    assert.deepEqual(trouble, { errors: [], dialogs: [] });

    // Another user gets nothing: not the page, the metadata, the file or the list.
    const { page: other } = await watchedPage(browser);
    await signIn(other, berth, 'bob', 'bob-password-1');
    const refused = await other.goto(`${berth.url}/recordings/${recording.id}`);
    assert.equal(refused.status(), 404);
    assert.equal(await other.locator('#berth-replay').count(), 0);
    for (const path of [`/api/v1/recordings/${recording.id}`, recording.cast_url, `/api/v1/workspaces/${workspace.id}/recordings`]) {
      const { status, text } = await request(berth, 'GET', path, bob);
      assert.equal(status, 404, `GET ${path} as bob: ${status} ${text}`);
      assert.doesNotMatch(text, /replay-42/);
    }

    // An admin finds it under Recordings, filtered by owner, and watches it from there.
    const { page: adminPage, trouble: adminTrouble } = await watchedPage(browser);
    await signIn(adminPage, berth, 'admin', berth.adminPassword);
    await adminPage.goto(`${berth.url}/admin/recordings`);
    await adminPage.fill('input[name=owner]', 'ann');
    await Promise.all([adminPage.waitForURL(/owner=ann/), adminPage.click('form.toolbar button[type=submit]')]);
    const row = adminPage.locator('tr.recording', { hasText: 'ann' });
    assert.equal(await row.count(), 1);
    await screenshot(adminPage, 'admin-recordings');
    await Promise.all([
      adminPage.waitForURL(`${berth.url}/recordings/${recording.id}`),
      row.locator('a', { hasText: 'Replay' }).click(),
    ]);
    await play(adminPage, ['replay-42']);
    assert.deepEqual(adminTrouble, { errors: [], dialogs: [] });
  } finally {
    await browser.close();
    await berth.stop();
  }
});

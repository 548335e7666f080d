// The admin UI in a real browser: the admin creates a template and a user, the user starts a
// workspace in a second browser context, the admin's dashboard shows it live, the admin stops
// it. Screenshots of every page go to screenshots/ (and docs/images/, the admin guide's, with
// BERTH_DOCS_IMAGES=1).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startBerth, launchBrowser, screenshot, signIn } from '../lib/berth.mjs';

/** Logs in through the form; the login lands on the dashboard. */
async function logIn(page, berth, username, password) {
  await signIn(page, berth, username, password);
  assert.equal(new URL(page.url()).pathname, '/');
}

test('an admin manages users and templates and watches a workspace live', async () => {
  const berth = await startBerth();
  const browser = await launchBrowser();
  try {
    const admin = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
    await admin.goto(`${berth.url}/admin/users`);
    assert.equal(new URL(admin.url()).pathname, '/login', 'anonymous visitors are sent to /login');
    await screenshot(admin, 'login');
    await logIn(admin, berth, 'admin', berth.adminPassword);

    // A template.
    await admin.goto(`${berth.url}/admin/templates/new`);
    await admin.fill('input[name=name]', 'lab');
    await admin.fill('input[name=description]', 'Debian for the browser tests');
    await admin.fill('input[name=image]', 'berth-test/base');
    await admin.fill('input[name=network]', 'none');
    await admin.fill('input[name=memory]', '256m');
    await screenshot(admin, 'template-edit');
    await Promise.all([admin.waitForURL(`${berth.url}/admin/templates`), admin.click('form.grid button[type=submit]')]);
    assert.match(await admin.textContent('main'), /berth-test\/base/);
    await screenshot(admin, 'templates');

    // A user allowed to start it.
    await admin.goto(`${berth.url}/admin/users/new`);
    await admin.fill('input[name=username]', 'ann');
    await admin.fill('input[name=password]', 'ann-password-1');
    await admin.check('input[name=templates][value=lab]');
    await admin.fill('textarea[name=metadata]', 'team=lab');
    await screenshot(admin, 'user-edit');
    await Promise.all([admin.waitForURL(`${berth.url}/admin/users`), admin.click('main form.card button[type=submit]')]);
    await screenshot(admin, 'users');
    const usersYaml = readFileSync(join(berth.home, 'config/users.yaml'), 'utf8');
    assert.match(usersYaml, /username: ann/);
    assert.match(usersYaml, /- lab/);

    // A client token, shown once.
    await admin.goto(`${berth.url}/admin/users/ann`);
    admin.once('dialog', (dialog) => dialog.accept());
    await admin.click('form[action="/admin/users/ann/token"] button');
    await admin.waitForSelector('#token');
    assert.match(await admin.textContent('#token'), /\S{8,}/);
    await screenshot(admin, 'token');

    // The dashboard, left open.
    await admin.goto(`${berth.url}/admin/dashboard`);
    await admin.waitForSelector('#cpu');
    await screenshot(admin, 'dashboard-empty');

    // The user, in a second browser context, starts a workspace.
    const user = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
    await logIn(user, berth, 'ann', 'ann-password-1');
    await Promise.all([user.waitForURL(`${berth.url}/`), user.click('[data-testid=start-lab]')]);
    await user.waitForSelector('tr.workspace');
    await screenshot(user, 'my-workspaces');
    const terminalLink = await user.getAttribute('tr.workspace a.button', 'href');
    assert.match(terminalLink, /^\/w\/[0-9a-f-]+$/);

    // The user types into the workspace's terminal.
    const terminal = await user.context().newPage();
    await terminal.goto(`${berth.url}${terminalLink}`);
    await terminal.waitForSelector('#berth-status[data-state=connected]', { timeout: 30_000 });
    await terminal.click('#berth-terminal');
    await terminal.keyboard.type('echo typed-$((20+22))');
    await terminal.keyboard.press('Enter');
    await terminal.waitForFunction(
      () => document.querySelector('.xterm-rows')?.textContent.includes('typed-42'),
      null,
      { timeout: 30_000 },
    );
    assert.match(await terminal.textContent('.xterm-rows'), /typed-42/);

    // It shows on the admin's dashboard without a reload (SSE).
    const row = admin.locator('#running tr.workspace', { hasText: 'ann' });
    await row.waitFor({ timeout: 10_000 });
    assert.match(await row.textContent(), /lab/);
    await screenshot(admin, 'dashboard');

    // The admin stops it; the user sees it stopped.
    await Promise.all([admin.waitForURL(`${berth.url}/admin/dashboard`), row.locator('button', { hasText: 'Stop' }).click()]);
    await admin.locator('#running tr.workspace', { hasText: 'ann' }).waitFor({ state: 'detached', timeout: 10_000 });
    await user.reload();
    assert.doesNotMatch(await user.getAttribute('tr.workspace', 'data-state'), /running/);

    // The audit log has it all.
    await admin.goto(`${berth.url}/admin/audit?user=admin`);
    assert.match(await admin.textContent('main'), /user\.create/);
    await screenshot(admin, 'audit');

    // Log out.
    await Promise.all([user.waitForURL(`${berth.url}/login`), user.click('form.logout button')]);
    await user.goto(`${berth.url}/`);
    assert.equal(new URL(user.url()).pathname, '/login');
  } finally {
    await browser.close();
    await berth.stop();
  }
});

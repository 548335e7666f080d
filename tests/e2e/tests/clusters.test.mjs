// Self-service sign-up and a cluster in the browser, as a visitor of a training site does it:
// sign up, log in, ask for a cluster, watch it turn running without a reload (over
// /api/v1/events), download its kubeconfig and check it with the real kubectl, see it on the
// admin's dashboard, delete it, log out. The cluster is the stand-in k3s image
// (scripts/cluster-image.sh) on the test Docker Engine.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBerth, launchBrowser, screenshot, signIn, waitFor } from '../lib/berth.mjs';

test('sign up, ask for a cluster, see it run live, download its kubeconfig, delete it', async () => {
  const berth = await startBerth({
    sections: {
      clusters: {
        enabled: true,
        network: 'host',
        image: 'berth-test/k3s-standin',
        api_address: '127.0.0.1',
        memory: '256m',
        cpus: 1,
        // The test engine cannot start privileged containers; the stand-in needs none.
        privileged: false,
        // Long enough to see it provisioning first.
        env: ['STANDIN_READY_DELAY=5'],
      },
      registration: { mode: 'open', defaults: { templates: [], clusters: true } },
    },
  });
  const dir = mkdtempSync(join(tmpdir(), 'berth-e2e-kube-'));
  let browser;
  try {
    browser = await launchBrowser();
    const context = await browser.newContext({ acceptDownloads: true });
    const page = await context.newPage();
    page.on('dialog', (dialog) => dialog.accept());

    // Sign up, then log in with the new account.
    await page.goto(`${berth.url}/login`);
    await Promise.all([page.waitForURL(/\/register$/), page.click('a[href="/register"]')]);
    await page.fill('input[name=username]', 'zoe');
    await page.fill('input[name=password]', 'zoe-password-1');
    await page.fill('input[name=password_again]', 'zoe-password-1');
    await Promise.all([page.waitForURL(/\/login\?registered=zoe/), page.click('button[type=submit]')]);
    assert.match(await page.textContent('.notice'), /zoe created/);
    await page.fill('input[name=password]', 'zoe-password-1');
    await Promise.all([page.waitForURL((url) => url.pathname === '/'), page.click('button[type=submit]')]);

    // Ask for a cluster; it shows provisioning, then running, with no reload in between.
    await Promise.all([page.waitForURL(/\/clusters$/), page.click('nav a[href="/clusters"]')]);
    await page.fill('[data-testid=cluster-name]', 'lab1');
    await page.fill('[data-testid=cluster-ttl]', '1h');
    await Promise.all([page.waitForURL(/\/clusters$/), page.click('[data-testid=cluster-create]')]);
    const badge = page.locator('tr.cluster [data-testid=cluster-state]');
    assert.equal(await badge.textContent(), 'provisioning');
    assert.ok(await page.locator('[data-testid=cluster-kubeconfig]').isHidden(), 'no kubeconfig yet');
    await page.evaluate(() => { window.berthNoReload = true; });
    await waitFor('the cluster to turn running', async () => (await badge.textContent()) === 'running', { timeout: 180_000 });
    assert.equal(await page.evaluate(() => window.berthNoReload), true, 'the page was not reloaded');
    const left = await page.textContent('tr.cluster [data-field=left]');
    assert.match(left, /^(59m|1h00m)/, `time left: ${left}`);
    await screenshot(page, 'clusters');

    // The kubeconfig download works with kubectl.
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.click('[data-testid=cluster-kubeconfig]'),
    ]);
    assert.equal(download.suggestedFilename(), 'lab1.kubeconfig.yaml');
    const file = join(dir, 'kubeconfig');
    await download.saveAs(file);
    const readyz = execFileSync('kubectl', ['--kubeconfig', file, 'get', '--raw', '/readyz']).toString();
    assert.equal(readyz.trim(), 'ok');

    // The admin's dashboard lists it, live as well.
    const admin = await browser.newPage();
    await signIn(admin, berth, 'admin', berth.adminPassword);
    await admin.goto(`${berth.url}/admin/dashboard`);
    await waitFor('the cluster on the dashboard', async () =>
      (await admin.locator('#clusters tr.cluster [data-field=owner]').allTextContents()).includes('zoe'));
    assert.equal(await admin.textContent('#clusters tr.cluster [data-testid=cluster-state]'), 'running');

    // Delete it: it leaves the list once the provider removed it, on both pages.
    await Promise.all([page.waitForURL(/\/clusters$/), page.click('[data-testid=cluster-delete]')]);
    await waitFor('the cluster to leave the list', async () => (await page.locator('tr.cluster').count()) === 0, { timeout: 60_000 });
    await waitFor('the cluster to leave the dashboard', async () => (await admin.locator('#clusters tr.cluster').count()) === 0, { timeout: 60_000 });
    assert.ok(await page.locator('[data-clusters-empty]').isVisible());

    // Log out.
    await Promise.all([page.waitForURL(/\/login$/), page.click('form.logout button')]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    if (browser) await browser.close();
    await berth.stop();
  }
});

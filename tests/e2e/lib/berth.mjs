// Starts the real `berth serve` in a temporary home on a loopback port, and Debian's chromium
// through playwright-core. Every server gets its own `berth.instance` label, so its containers
// never meet another test's, and stopping it removes them.
import { spawn, execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const repo = resolve(here, '../../..');
export const screenshots = join(repo, 'tests/e2e/screenshots');

const HOW_TO = 'run the browser tests through `make test` (or scripts/e2e.sh), which builds berth and starts the test Docker Engine';

export function berthBinary() {
  const target = process.env.CARGO_TARGET_DIR ?? join(repo, 'target');
  return process.env.BERTH_BIN ?? join(target, 'debug/berth');
}

/** Starts `berth serve`; resolves once it listens, with its URL and first-start admin password.
 * With `fleet` (main.yaml `fleet:` keys, e.g. `{ repository: 'file:///…', keys_dir: '…' }`),
 * Berth starts once to write its default configuration and the admin, stops, gets the fleet
 * section (read at start-up only) and starts again; `beforeFleet(home)` runs in between, for
 * files such as `fleet/known_hosts`. */
export async function startBerth({ fleet, beforeFleet, sections } = {}) {
  if (!process.env.DOCKER_HOST) throw new Error(`DOCKER_HOST is not set: ${HOW_TO}`);
  const home = mkdtempSync(join(tmpdir(), 'berth-e2e-'));
  const instance = `e2e-${randomBytes(4).toString('hex')}`;
  let server = await serve(home, instance);
  const password = server.password;
  if (fleet || sections) {
    await server.stop();
    const main = join(home, 'config/main.yaml');
    let text = readFileSync(main, 'utf8');
    if (fleet) text = withFleet(text, fleet);
    for (const [name, values] of Object.entries(sections ?? {})) text = withSection(text, name, values);
    writeFileSync(main, text);
    if (beforeFleet) await beforeFleet(home);
    server = await serve(home, instance);
  }
  return {
    url: server.url,
    home,
    instance,
    adminPassword: password,
    async stop() {
      await server.stop();
      removeContainers(instance);
      rmSync(home, { recursive: true, force: true });
    },
  };
}

/** One `berth serve` process in `home`; resolves once it listens. */
async function serve(home, instance) {
  const child = spawn(berthBinary(), ['serve', '--listen', '127.0.0.1:0', '--home', home], {
    env: { ...process.env, BERTH_INSTANCE: instance, BERTH_HOME: '', BERTH_LISTEN: '' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const lines = [];
  const started = new Promise((resolveStart, reject) => {
    const timer = setTimeout(() => reject(new Error(`berth serve did not start:\n${lines.join('\n')}`)), 60_000);
    child.on('error', (err) => reject(new Error(`cannot run ${berthBinary()} (${err.message}): ${HOW_TO}`)));
    child.on('exit', (code) => reject(new Error(`berth serve exited with ${code}:\n${lines.join('\n')}`)));
    let password = null;
    createInterface({ input: child.stderr }).on('line', (line) => {
      lines.push(line);
      const pw = line.trim().match(/^password: (\S+)$/);
      if (pw) password = pw[1];
      const listening = line.match(/^Berth is listening on (http:\/\/\S+)/);
      if (listening) {
        clearTimeout(timer);
        resolveStart({ url: listening[1], password });
      }
    });
  });
  const { url, password } = await started;
  child.removeAllListeners('exit');
  return {
    url,
    password,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
    },
  };
}

/** main.yaml `text` with the keys of `fleet` set in its `fleet:` section (as YAML scalars). */
export function withFleet(text, fleet) {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => l === 'fleet:');
  assert.ok(start >= 0, 'main.yaml has a fleet section');
  let end = lines.findIndex((l, i) => i > start && /^\S/.test(l));
  if (end < 0) end = lines.length;
  for (const [key, value] of Object.entries(fleet)) {
    const line = `  ${key}: ${JSON.stringify(value)}`;
    const at = lines.findIndex((l, i) => i > start && i < end && l.startsWith(`  ${key}:`));
    if (at >= 0) {
      lines[at] = line;
    } else {
      lines.splice(start + 1, 0, line);
      end += 1;
    }
  }
  return lines.join('\n');
}

/** main.yaml `text` with a top-level section `name` of `values` (JSON, which YAML 1.2 reads)
 * appended; the default file has the section commented out only. `sections` of startBerth
 * (`{ clusters: {...}, registration: {...} }`) come through here. */
export function withSection(text, name, values) {
  assert.ok(!text.split('\n').includes(`${name}:`), `main.yaml has no ${name} section yet`);
  const body = Object.entries(values).map(([key, value]) => `  ${key}: ${JSON.stringify(value)}`);
  return `${text.trimEnd()}\n${name}:\n${body.join('\n')}\n`;
}

function removeContainers(instance) {
  const filter = `label=berth.instance=${instance}`;
  try {
    const ids = execFileSync('docker', ['ps', '-aq', '--filter', filter]).toString().split(/\s+/).filter(Boolean);
    if (ids.length) execFileSync('docker', ['rm', '-f', '-v', ...ids]);
    execFileSync('docker', ['volume', 'prune', '-f', '--filter', filter]);
  } catch (err) {
    console.error(`could not remove the containers of ${instance}: ${err.message}`);
  }
}

/** Debian's chromium, headless, with nothing reaching outside the machine. */
export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** Saves a screenshot of `page` as screenshots/NAME.png and returns the path. With
 * BERTH_DOCS_IMAGES=1 in the environment it is also copied to docs/images/NAME.png, the
 * pictures the documentation shows (`BERTH_DOCS_IMAGES=1 make test` refreshes them); otherwise
 * a test run leaves the repository as it was. */
export async function screenshot(page, name) {
  mkdirSync(screenshots, { recursive: true });
  const path = join(screenshots, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  if (process.env.BERTH_DOCS_IMAGES === '1') {
    copyFileSync(path, join(repo, 'docs/images', `${name}.png`));
  }
  return path;
}

/** Calls Berth's API as `token` (none: anonymous); fails unless it answers 2xx. */
export async function api(berth, method, path, token, body) {
  const { status, text } = await request(berth, method, path, token, body);
  assert.ok(status >= 200 && status < 300, `${method} ${path}: ${status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** Calls Berth's API as `token` and returns the status and body text, whatever the status. */
export async function request(berth, method, path, token, body) {
  const response = await fetch(`${berth.url}${path}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body ? { 'content-type': 'application/json' } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: response.status, text: await response.text() };
}

/** A login token for the API. */
export async function login(berth, username, password) {
  return (await api(berth, 'POST', '/api/v1/auth/login', null, { username, password })).token;
}

/** Sets up a small lab as the admin: template `lab` (the test image, network none, 256m) and
 * a user NAME with password `NAME-password-1` allowed it, for each of `users`. Returns the
 * admin's token and each user's, by name. */
export async function lab(berth, users = ['ann']) {
  const tokens = { admin: await login(berth, 'admin', berth.adminPassword) };
  await api(berth, 'POST', '/api/v1/templates', tokens.admin, {
    name: 'lab', image: 'berth-test/base', network: 'none', memory: '256m',
  });
  for (const username of users) {
    const password = `${username}-password-1`;
    await api(berth, 'POST', '/api/v1/users', tokens.admin, { username, password, templates: ['lab'] });
    tokens[username] = await login(berth, username, password);
  }
  return tokens;
}

/** Logs `page` in through the login form, as a person does. */
export async function signIn(page, berth, username, password) {
  await page.goto(`${berth.url}/login`);
  await page.fill('input[name=username]', username);
  await page.fill('input[name=password]', password);
  await Promise.all([page.waitForURL((url) => url.pathname !== '/login'), page.click('button[type=submit]')]);
}

/** Polls `check` (sync or async) until it returns a truthy value, which it returns; fails with
 * `what` after `timeout` ms. */
export async function waitFor(what, check, { timeout = 20_000, interval = 250 } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
      last = value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${last})`);
    await new Promise((r) => setTimeout(r, interval));
  }
}

// The SSH test machines and an inventory repository of them, for the fleet's browser tests.
import { execFileSync } from 'node:child_process';
import { copyFileSync, chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const HOW_TO = 'start the SSH test machines (scripts/test-machines.sh, or run through scripts/with-test-env.sh / make test)';

/** The SSH test machines of $BERTH_TEST_MACHINES (name host port user host_key client_id jump),
 * or null when they are not set up (a failure under CI). */
export function lab() {
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

/** known_hosts lines for `machines`, as an admin would have them. */
export function knownHosts(machines) {
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

/** An inventory repository in `root` with the machines (type `lab`, tag `lab`) and `files`
 * (name → content: scripts.yaml and its scripts), and a keys dir with the test client key. */
export function inventory(root, machines, key, files = {}) {
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
  for (const [name, content] of Object.entries(files)) writeFileSync(join(repo, name), content);
  git(repo, 'add', '--all');
  git(repo, 'commit', '--quiet', '-m', 'the test machines');
  const keys = join(root, 'keys');
  mkdirSync(keys, { mode: 0o700 });
  copyFileSync(key, join(keys, 'id_ed25519'));
  chmodSync(join(keys, 'id_ed25519'), 0o600);
  return { repository: `file://${repo}`, keys };
}

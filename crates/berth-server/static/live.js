// Live cluster rows (the Clusters page and the dashboard) over GET /api/v1/events, a
// WebSocket that sends a snapshot, then each change (LiveEvent in berth-types). No polling:
// the only timer counts the time left down between messages.
'use strict';
(() => {
  const table = document.querySelector('table[data-clusters]');
  const template = document.querySelector('template[data-cluster-template]');
  if (!table || !template) return;
  const body = table.tBodies[0];
  const empty = document.querySelector('[data-clusters-empty]');
  const dot = document.querySelector('[data-live-events]');
  const LIVE = new Set(['provisioning', 'running']);

  const left = (expires) => {
    const ms = Date.parse(expires) - Date.now();
    if (Number.isNaN(ms)) return '';
    if (ms <= 0) return 'expired';
    const total = Math.floor(ms / 1000);
    const h = Math.floor(total / 3600);
    const m = Math.floor((total % 3600) / 60);
    const s = total % 60;
    if (h > 0) return `${h}h${String(m).padStart(2, '0')}m`;
    if (m > 0) return `${m}m${String(s).padStart(2, '0')}s`;
    return `${s}s`;
  };
  const tick = () => {
    for (const cell of body.querySelectorAll('[data-field="left"]')) {
      const row = cell.closest('tr');
      cell.textContent = row && LIVE.has(row.dataset.state) ? left(cell.dataset.expires) : '';
    }
  };
  const field = (row, name) => row.querySelector(`[data-field="${name}"]`);
  const fill = (row, cluster) => {
    row.dataset.cluster = cluster.id;
    row.dataset.state = cluster.state;
    field(row, 'name').textContent = cluster.name;
    const owner = field(row, 'owner');
    if (owner) owner.textContent = cluster.owner;
    const badge = field(row, 'state');
    badge.textContent = cluster.state;
    badge.title = cluster.state_reason;
    field(row, 'reason').textContent = cluster.state === 'failed' ? cluster.state_reason : '';
    field(row, 'left').dataset.expires = cluster.expires_at;
    field(row, 'api').textContent = cluster.api_url || '';
    const kubeconfig = field(row, 'kubeconfig');
    kubeconfig.href = `/api/v1/clusters/${cluster.id}/kubeconfig`;
    kubeconfig.hidden = cluster.state !== 'running';
    const extend = field(row, 'extend');
    extend.action = `/clusters/${cluster.id}/extend`;
    extend.hidden = !LIVE.has(cluster.state);
    const remove = field(row, 'delete');
    remove.action = `/clusters/${cluster.id}/delete`;
    remove.hidden = cluster.state === 'deleting';
  };
  const rowOf = (id) => body.querySelector(`tr[data-cluster="${CSS.escape(id)}"]`);
  const shown = () => {
    const any = body.rows.length > 0;
    table.hidden = !any;
    if (empty) empty.hidden = any;
  };
  const remove = (id) => {
    const row = rowOf(id);
    if (row) row.remove();
  };
  const upsert = (cluster) => {
    if (cluster.state === 'deleted') {
      remove(cluster.id);
      return;
    }
    let row = rowOf(cluster.id);
    if (!row) {
      row = template.content.querySelector('tr').cloneNode(true);
      body.appendChild(row);
    }
    fill(row, cluster);
  };
  const apply = (event) => {
    switch (event.type) {
      case 'snapshot': {
        const ids = new Set(event.clusters.map((c) => c.id));
        for (const row of [...body.rows]) if (!ids.has(row.dataset.cluster)) row.remove();
        for (const cluster of event.clusters) upsert(cluster);
        break;
      }
      case 'cluster': upsert(event.cluster); break;
      case 'cluster_removed': remove(event.id); break;
      default: return;
    }
    shown();
    tick();
  };

  let delay = 500;
  const connect = () => {
    const scheme = window.location.protocol === 'https:' ? 'wss' : 'ws';
    const socket = new WebSocket(`${scheme}://${window.location.host}/api/v1/events`);
    socket.addEventListener('open', () => {
      delay = 500;
      if (dot) dot.classList.remove('off');
    });
    socket.addEventListener('message', (message) => {
      try {
        apply(JSON.parse(message.data));
      } catch (err) {
        console.warn('berth: a live event could not be applied', err);
      }
    });
    socket.addEventListener('close', (closed) => {
      if (dot) dot.classList.add('off');
      // 4401: the session ended; the next page load goes to the login page.
      if (closed.code === 4401) return;
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 15000);
    });
  };
  tick();
  setInterval(tick, 1000);
  connect();
})();

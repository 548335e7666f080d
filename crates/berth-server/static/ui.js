// Berth's admin UI: confirmations, copy buttons, live pages, forms sent in the background,
// and the CSRF header for htmx requests. No inline scripts anywhere: the CSP forbids them.
'use strict';
document.addEventListener('submit', (event) => {
  const message = event.target.dataset && event.target.dataset.confirm;
  if (message && !window.confirm(message)) event.preventDefault();
});
// A form marked data-live (Verify, Sync now, Stop) is posted in the background: the page stays,
// and its live stream shows what changed; with data-follow as well (Rerun) the browser then goes
// where the answer leads (the new operation's page). A refusal shows the error page's message in
// #flash.
document.addEventListener('submit', (event) => {
  const form = event.target;
  if (event.defaultPrevented || !form.matches('form[data-live]')) return;
  event.preventDefault();
  const follow = form.hasAttribute('data-follow');
  const flash = document.getElementById('flash');
  if (flash) flash.hidden = true;
  form.classList.add('busy');
  for (const button of form.querySelectorAll('button')) button.disabled = true;
  fetch(form.action, {
    method: 'POST',
    body: new URLSearchParams(new FormData(form)),
    credentials: 'same-origin',
    redirect: follow ? 'follow' : 'manual',
  }).then(async (response) => {
    if (follow && response.ok && response.redirected) {
      window.location.assign(response.url);
      return;
    }
    if (response.type === 'opaqueredirect' || response.ok) return;
    const page = new DOMParser().parseFromString(await response.text(), 'text/html');
    const message = page.querySelector('.error');
    throw new Error(message ? message.textContent : `${response.status} ${response.statusText}`);
  }).catch((err) => {
    if (flash) {
      flash.textContent = err.message;
      flash.hidden = false;
    }
  }).finally(() => {
    form.classList.remove('busy');
    for (const button of form.querySelectorAll('button')) button.disabled = false;
  });
});
document.addEventListener('click', (event) => {
  const button = event.target.closest('[data-copy]');
  if (!button) return;
  const text = document.getElementById(button.dataset.copy).textContent;
  navigator.clipboard.writeText(text).then(() => { button.textContent = 'Copied'; });
});
document.addEventListener('htmx:configRequest', (event) => {
  const meta = document.querySelector('meta[name="csrf-token"]');
  if (meta) event.detail.headers['X-CSRF-Token'] = meta.content;
});
// Live pages (dashboard, fleet, machine): the server sends the whole live part, rendered and
// escaped, on each change.
for (const live of document.querySelectorAll('[data-sse]')) {
  const source = new EventSource(live.dataset.sse);
  source.addEventListener('update', (event) => {
    if (event.data) live.innerHTML = event.data;
  });
}
// The run form: on every change the server counts the machines its targets select, and the
// answer (rendered and escaped there) replaces the count. Choosing a tag, a type or a machine
// also chooses that way of targeting.
for (const form of document.querySelectorAll('form[data-count-from]')) {
  const into = document.getElementById(form.dataset.countInto);
  let asked = 0;
  form.addEventListener('change', (event) => {
    const group = event.target.closest('[data-targets]');
    if (group) {
      const radio = form.querySelector(`input[name=targets][value="${group.dataset.targets}"]`);
      if (radio) radio.checked = true;
    }
    const query = new URLSearchParams(new FormData(form));
    query.delete('_csrf');
    const mine = ++asked;
    fetch(`${form.dataset.countFrom}?${query}`, { credentials: 'same-origin' })
      .then((response) => response.text())
      .then((html) => {
        if (mine !== asked) return;
        const part = new DOMParser().parseFromString(html, 'text/html').querySelector('.targets, .error');
        into.replaceChildren(...(part ? [part] : []));
      })
      .catch((err) => {
        if (mine === asked) into.textContent = err.message;
      });
  });
}
// An operation that runs: its output and states arrive over the API's event stream, from the
// first event (the panels start empty). Output is appended as text, never as HTML; each stream
// of each machine keeps its last OUTPUT_KEPT characters. When the operation ends, the server
// renders the page's part again (durations, the grouped view, Rerun).
const OUTPUT_KEPT = 200 * 1024;
const outputSizes = new WeakMap();
function appendOutput(pre, text) {
  if (!text) return;
  const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
  pre.append(text);
  let size = (outputSizes.get(pre) ?? 0) + text.length;
  while (size > OUTPUT_KEPT && pre.firstChild) {
    const first = pre.firstChild;
    const excess = size - OUTPUT_KEPT;
    if (first.length <= excess) {
      size -= first.length;
      first.remove();
    } else {
      first.deleteData(0, excess);
      size -= excess;
    }
    pre.dataset.trimmed = '';
  }
  outputSizes.set(pre, size);
  if (atEnd) pre.scrollTop = pre.scrollHeight;
}
function followOperation(op) {
  const tones = new Map(op.dataset.tones.split(' ').map((pair) => pair.split(':')));
  const unfinished = op.dataset.unfinished.split(' ');
  const setBadge = (badge, status) => {
    if (!badge) return;
    badge.classList.remove(...new Set(tones.values()));
    if (tones.get(status)) badge.classList.add(tones.get(status));
    badge.dataset.status = status;
    badge.textContent = status;
  };
  const panel = (machine) => op.querySelector(`#per-machine .run[data-machine="${CSS.escape(machine)}"]`);
  const decoders = new Map();
  for (const pre of op.querySelectorAll('#per-machine pre.output')) pre.textContent = '';
  const source = new EventSource(op.dataset.events);
  let refreshed = false;
  const refresh = () => {
    if (refreshed) return;
    refreshed = true;
    source.close();
    fetch(op.dataset.fragment, { credentials: 'same-origin' })
      .then((response) => (response.ok ? response.text() : Promise.reject(new Error(`${response.status} ${response.statusText}`))))
      .then((html) => {
        op.innerHTML = html;
        op.dataset.finished = 'true';
        const dot = document.querySelector('h1 .live-dot');
        if (dot) dot.remove();
      })
      .catch((err) => {
        const flash = document.getElementById('flash');
        if (flash) {
          flash.textContent = `The operation's final state could not be loaded (${err.message}): reload the page.`;
          flash.hidden = false;
        }
      });
  };
  source.addEventListener('output', (event) => {
    const chunk = JSON.parse(event.data);
    const box = panel(chunk.machine);
    const pre = box && box.querySelector(`pre[data-stream="${chunk.stream}"]`);
    if (!pre) return;
    // One decoder per stream: a character split across chunks comes out whole.
    const key = `${chunk.machine} ${chunk.stream}`;
    if (!decoders.has(key)) decoders.set(key, new TextDecoder());
    const decoder = decoders.get(key);
    let text;
    if (chunk.data_base64) {
      const bytes = Uint8Array.from(atob(chunk.data_base64), (c) => c.charCodeAt(0));
      text = decoder.decode(bytes, { stream: true });
    } else {
      text = decoder.decode() + chunk.data;
    }
    appendOutput(pre, text);
  });
  source.addEventListener('machine', (event) => {
    const run = JSON.parse(event.data);
    const box = panel(run.machine);
    if (!box) return;
    setBadge(box.querySelector('.run-status'), run.status);
    let ending = '';
    if (run.signal) ending = `signal ${run.signal}`;
    else if (run.exit_code !== null && run.exit_code !== undefined) ending = `exit ${run.exit_code}`;
    box.querySelector('.ending').textContent = ending;
    const message = box.querySelector('.message');
    message.textContent = run.message;
    message.hidden = !run.message;
  });
  source.addEventListener('operation', (event) => {
    const { status } = JSON.parse(event.data);
    setBadge(op.querySelector('#status'), status);
    if (!unfinished.includes(status)) refresh();
  });
  // Refused (the session ended) or gone for good: show what the server has.
  source.addEventListener('error', () => {
    if (source.readyState === EventSource.CLOSED) refresh();
  });
}
for (const op of document.querySelectorAll('#operation[data-events]')) {
  if (op.dataset.finished !== 'true') followOperation(op);
}

// Berth's admin UI: confirmations, copy buttons, live pages, forms sent in the background,
// and the CSRF header for htmx requests. No inline scripts anywhere: the CSP forbids them.
'use strict';
document.addEventListener('submit', (event) => {
  const message = event.target.dataset && event.target.dataset.confirm;
  if (message && !window.confirm(message)) event.preventDefault();
});
// A form marked data-live (Verify, Sync now) is posted in the background: the page stays, and
// its live stream shows what changed. A refusal shows the error page's message in #flash.
document.addEventListener('submit', (event) => {
  const form = event.target;
  if (event.defaultPrevented || !form.matches('form[data-live]')) return;
  event.preventDefault();
  const flash = document.getElementById('flash');
  if (flash) flash.hidden = true;
  form.classList.add('busy');
  for (const button of form.querySelectorAll('button')) button.disabled = true;
  fetch(form.action, {
    method: 'POST',
    body: new URLSearchParams(new FormData(form)),
    credentials: 'same-origin',
    redirect: 'manual',
  }).then(async (response) => {
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

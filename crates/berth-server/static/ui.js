// Berth's admin UI: confirmations, copy buttons, the live dashboard, and the CSRF header for
// htmx requests. No inline scripts anywhere: the CSP forbids them.
'use strict';
document.addEventListener('submit', (event) => {
  const message = event.target.dataset && event.target.dataset.confirm;
  if (message && !window.confirm(message)) event.preventDefault();
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
// The dashboard: the server sends the whole live part, rendered and escaped, on each change.
for (const live of document.querySelectorAll('[data-sse]')) {
  const source = new EventSource(live.dataset.sse);
  source.addEventListener('update', (event) => {
    if (event.data) live.innerHTML = event.data;
  });
}

// /assets/terminal.js: the workspace terminal page (/w/{id}). Wires xterm and the status bar to
// a TerminalClient. The markup it expects is in docs/terminal-protocol.md.

import { FitAddon } from "@xterm/addon-fit";
import { renderMembers, requireElement, StatusBar } from "../dom";
import { resolveWsUrl, browserTimers } from "../socket";
import { describeTerminal } from "../status";
import { TerminalClient, type TerminalStatus } from "../terminal-client";
import { createTerminal } from "../xterm-setup";
import { onResize } from "./resize";

function main(): void {
  const host = requireElement("berth-terminal");
  const bar = new StatusBar(requireElement("berth-status"), () => client?.reconnectNow());
  const members = document.getElementById("berth-members");
  const title = host.dataset.title ?? "";
  let client: TerminalClient | undefined;
  let wsUrl: string;
  try {
    wsUrl = resolveWsUrl(host.dataset.wsUrl ?? "", location.href).toString();
  } catch (e) {
    bar.fail(e instanceof Error ? e.message : String(e));
    return;
  }

  const term = createTerminal();
  const fit = new FitAddon();
  term.loadAddon(fit);
  term.open(host);
  fit.fit();

  let last: TerminalStatus | null = null;
  const render = () => {
    if (last !== null) bar.render(describeTerminal(last, Date.now()), title, last.role === "viewer");
  };
  client = new TerminalClient({
    wsUrl,
    size: { cols: term.cols, rows: term.rows },
    title,
    factory: (url) => new WebSocket(url),
    timers: browserTimers,
    sink: {
      write: (bytes) => term.write(bytes),
      status: (s) => {
        last = s;
        render();
      },
      members: (list, you) => {
        if (members !== null) renderMembers(members, list, you);
      },
      readOnly: (readOnly) => {
        term.options.disableStdin = readOnly;
        host.classList.toggle("berth-read-only", readOnly);
      },
      warn: (message) => console.warn(message),
    },
  });
  const c = client;
  term.onData((data) => c.input(data));
  term.onBinary((data) => c.binaryInput(data));
  term.onResize(({ cols, rows }) => c.resize(cols, rows));
  onResize(host, () => fit.fit());
  // The countdown of "reconnecting in Ns…" moves once a second.
  window.setInterval(() => {
    if (last?.connection.kind === "waiting") render();
  }, 1000);
  // Back on the network: no reason to sit out the rest of the backoff.
  window.addEventListener("online", () => {
    if (last?.connection.kind === "waiting") c.reconnectNow();
  });
  c.start();
  term.focus();
}

main();

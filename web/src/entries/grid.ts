// /assets/grid.js: the grid page (/g/{id}). Lays out up to four xterm panes over one socket.
// The markup it expects and the elements it creates are in docs/terminal-protocol.md.

import { FitAddon } from "@xterm/addon-fit";
import type { Terminal } from "@xterm/xterm";
import type { ConnectionState } from "../connection";
import { element, requireElement, StatusBar } from "../dom";
import { GridClient } from "../grid-client";
import { parseLayout, parsePanes, slotCount, slotRects, type LayoutName, type PaneSpec } from "../grid-layout";
import { browserTimers, resolveWsUrl } from "../socket";
import { describeConnection } from "../status";
import { createTerminal } from "../xterm-setup";
import { onResize } from "./resize";

const GAP_PX = 4;

interface PaneView {
  spec: PaneSpec;
  box: HTMLDivElement;
  title: HTMLSpanElement;
  state: HTMLSpanElement;
  term: Terminal;
  fit: FitAddon;
}

function buildPane(spec: PaneSpec): PaneView {
  const box = element("div", "berth-pane");
  box.dataset.pane = String(spec.pane);
  box.dataset.state = "connecting";
  const header = element("div", "berth-pane-header");
  const title = element("span", "berth-pane-title", spec.title);
  const state = element("span", "berth-pane-state", "connecting");
  header.append(title, state);
  const screen = element("div", "berth-pane-screen");
  box.append(header, screen);
  const term = createTerminal({ fontSize: 13 });
  const fit = new FitAddon();
  term.loadAddon(fit);
  return { spec, box, title, state, term, fit };
}

function setPaneState(view: PaneView, state: string, text: string): void {
  view.box.dataset.state = state;
  view.state.textContent = text;
}

function main(): void {
  const root = requireElement("berth-grid");
  const statusEl = document.getElementById("berth-status");
  let layout: LayoutName;
  let specs: PaneSpec[];
  let wsUrl: string;
  try {
    layout = parseLayout(root.dataset.layout ?? "single");
    specs = parsePanes(root.dataset.panes ?? "[]", layout);
    wsUrl = resolveWsUrl(root.dataset.wsUrl ?? "", location.href).toString();
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    if (statusEl !== null) new StatusBar(statusEl, () => {}).fail(message);
    else root.textContent = message;
    return;
  }
  root.dataset.layoutApplied = layout;

  const views = new Map<number, PaneView>();
  const slots: HTMLDivElement[] = [];
  for (let slot = 0; slot < slotCount(layout); slot++) {
    const spec = specs.find((s) => s.pane === slot);
    if (spec === undefined) {
      slots.push(element("div", "berth-pane berth-pane-empty"));
      continue;
    }
    const view = buildPane(spec);
    views.set(spec.pane, view);
    slots.push(view.box);
  }
  root.replaceChildren(...slots);
  for (const view of views.values()) {
    const screen = view.box.querySelector<HTMLElement>(".berth-pane-screen");
    if (screen !== null) view.term.open(screen);
  }

  let lastError: string | null = null;
  let connection: ConnectionState = { kind: "idle" };
  const bar = statusEl !== null ? new StatusBar(statusEl, () => client.reconnectNow()) : null;
  const render = () => bar?.render(describeConnection(connection, Date.now(), lastError, "grid"), "", false);

  const client = new GridClient({
    wsUrl,
    panes: [...views.keys()],
    factory: (url) => new WebSocket(url),
    timers: browserTimers,
    sink: {
      output: (pane, bytes) => views.get(pane)?.term.write(bytes),
      paneStatus: (pane, state, title) => {
        const view = views.get(pane);
        if (view === undefined) return;
        if (title !== "") view.title.textContent = title;
        setPaneState(view, state, state);
      },
      paneExit: (pane, code) => {
        const view = views.get(pane);
        if (view !== undefined) setPaneState(view, "exited", `exited (code ${code})`);
      },
      error: (pane, message) => {
        const view = pane === null ? undefined : views.get(pane);
        if (view !== undefined) setPaneState(view, "error", message);
        else {
          lastError = message;
          render();
        }
      },
      connection: (state) => {
        connection = state;
        if (state.kind === "open") lastError = null;
        render();
      },
      broadcast: (on) => {
        if (broadcastToggle !== null) broadcastToggle.checked = on;
        root.dataset.broadcast = on ? "on" : "off";
      },
      warn: (message) => console.warn(message),
    },
  });
  // Broadcast typing (tmux's synchronize-panes), off by default.
  const broadcastToggle = document.getElementById("berth-broadcast") as HTMLInputElement | null;
  root.dataset.broadcast = "off";
  if (broadcastToggle !== null) {
    broadcastToggle.checked = false;
    broadcastToggle.addEventListener("change", () => client.setBroadcast(broadcastToggle.checked));
  }

  for (const view of views.values()) {
    const pane = view.spec.pane;
    view.term.onData((data) => client.input(pane, data));
    view.term.onBinary((data) => client.binaryInput(pane, data));
    view.term.onResize(({ cols, rows }) => client.resize(pane, cols, rows));
  }

  const place = () => {
    const rects = slotRects(layout, root.clientWidth, root.clientHeight, GAP_PX);
    rects.forEach((r, slot) => {
      const box = slots[slot];
      if (box === undefined) return;
      box.style.left = `${r.x}px`;
      box.style.top = `${r.y}px`;
      box.style.width = `${r.width}px`;
      box.style.height = `${r.height}px`;
    });
    for (const view of views.values()) {
      view.fit.fit();
      client.resize(view.spec.pane, view.term.cols, view.term.rows);
    }
  };
  place();
  onResize(root, place);
  window.setInterval(() => {
    if (connection.kind === "waiting") render();
  }, 1000);
  window.addEventListener("online", () => {
    if (connection.kind === "waiting") client.reconnectNow();
  });
  client.start();
  views.values().next().value?.term.focus();
}

main();

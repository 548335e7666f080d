// The grid socket's client: up to four panes over one WebSocket. Like `TerminalClient` it talks
// to a sink, so the page draws with xterm and tests record calls.

import { Backoff } from "./backoff";
import { Connection, type ConnectionState } from "./connection";
import { decodeGridMessage, encodeGridBroadcast, encodeGridInput, encodeGridResize, type PaneState } from "./grid-protocol";
import { clampSize, encodeBinaryInput, encodeInput, finalCloseReason } from "./protocol";
import type { SocketFactory, Timers } from "./socket";

export interface GridSink {
  output(pane: number, bytes: Uint8Array): void;
  paneStatus(pane: number, state: PaneState, title: string): void;
  paneExit(pane: number, code: number): void;
  /** `pane` is null for an error about the whole grid. */
  error(pane: number | null, message: string): void;
  connection(state: ConnectionState): void;
  /** The server says broadcast typing is on or off. */
  broadcast(on: boolean): void;
  warn(message: string): void;
}

export interface GridClientOptions {
  wsUrl: string;
  /** The pane numbers the page shows; messages for other panes are ignored. */
  panes: readonly number[];
  factory: SocketFactory;
  timers: Timers;
  backoff?: Backoff;
  sink: GridSink;
}

export class GridClient {
  private readonly connection: Connection;
  private readonly panes: ReadonlySet<number>;
  private readonly sizes = new Map<number, { cols: number; rows: number }>();
  private broadcasting = false;

  constructor(private readonly options: GridClientOptions) {
    this.panes = new Set(options.panes);
    this.connection = new Connection({
      url: () => options.wsUrl,
      factory: options.factory,
      timers: options.timers,
      ...(options.backoff ? { backoff: options.backoff } : {}),
      // The server closes an idle grid with 1000 "idle"; any other 1000 ended it on purpose.
      classify: (code, reason) => (code === 1000 && reason === "idle" ? "idle" : finalCloseReason(code)),
      handlers: {
        onOpen: () => this.opened(),
        onMessage: (data) => this.received(data),
        onState: (state) => this.options.sink.connection(state),
      },
    });
  }

  start(): void {
    this.connection.start();
  }

  input(pane: number, data: string): void {
    if (this.panes.has(pane) && data.length > 0) this.connection.send(encodeGridInput(pane, encodeInput(data)));
  }

  binaryInput(pane: number, data: string): void {
    if (this.panes.has(pane) && data.length > 0) this.connection.send(encodeGridInput(pane, encodeBinaryInput(data)));
  }

  resize(pane: number, cols: number, rows: number): void {
    if (!this.panes.has(pane)) return;
    const next = clampSize(cols, rows);
    const prev = this.sizes.get(pane);
    if (prev && prev.cols === next.cols && prev.rows === next.rows) return;
    this.sizes.set(pane, next);
    this.connection.send(encodeGridResize(pane, next.cols, next.rows));
  }

  /** Broadcast typing on or off (off on every new connection until asked again). */
  setBroadcast(on: boolean): void {
    this.broadcasting = on;
    this.connection.send(encodeGridBroadcast(on));
  }

  reconnectNow(): void {
    this.connection.reconnectNow();
  }

  dispose(): void {
    this.connection.dispose();
  }

  private opened(): void {
    // The server starts every socket with broadcast typing off: ask again after a reconnect.
    if (this.broadcasting) this.connection.send(encodeGridBroadcast(true));
    for (const [pane, size] of [...this.sizes.entries()].sort((a, b) => a[0] - b[0])) {
      this.connection.send(encodeGridResize(pane, size.cols, size.rows));
    }
  }

  private received(data: string | Uint8Array): void {
    if (typeof data !== "string") {
      this.options.sink.warn("grid socket: unexpected binary frame");
      return;
    }
    const decoded = decodeGridMessage(data);
    if (decoded.ok === false) {
      this.options.sink.warn(`grid socket: ${decoded.error}`);
      return;
    }
    // The grid has no hello; the first message that makes sense proves the session healthy.
    this.connection.markHealthy();
    if (decoded.ok === "ignored") return;
    const msg = decoded.value;
    if (msg.type === "broadcast") {
      this.options.sink.broadcast(msg.data);
      return;
    }
    if (msg.pane !== null && !this.panes.has(msg.pane)) {
      this.options.sink.warn(`grid socket: message for pane ${msg.pane}, which this page does not show`);
      return;
    }
    const sink = this.options.sink;
    switch (msg.type) {
      case "output":
        sink.output(msg.pane, msg.data);
        break;
      case "status":
        sink.paneStatus(msg.pane, msg.data.state, msg.data.title);
        break;
      case "exit":
        sink.paneExit(msg.pane, msg.data);
        break;
      case "error":
        sink.error(msg.pane, msg.data);
        break;
    }
  }
}

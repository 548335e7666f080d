// The terminal socket's client: keyboard input out as binary frames, output in as binary frames,
// JSON control messages both ways, keep-alive pings, and reconnection through `Connection`.
// It knows nothing of xterm or the DOM: it talks to a `TerminalSink`, which the page implements
// with xterm and the status bar, and tests implement with arrays.

import { Backoff } from "./backoff";
import { Connection, type ConnectionState } from "./connection";
import {
  clampSize,
  decodeServerMessage,
  encodeBinaryInput,
  encodeInput,
  encodePing,
  encodeResize,
  type Member,
  type Role,
} from "./protocol";
import type { Bytes, SocketFactory, TimerHandle, Timers } from "./socket";

export interface TerminalStatus {
  connection: ConnectionState;
  title: string;
  /** Who the server says we are, from the last `hello`. */
  you: string | null;
  role: Role | null;
  /** True once this socket's `hello` arrived: the shell is attached and input reaches it. */
  ready: boolean;
  exitCode: number | null;
  /** The text of the last `error` message, shown next to the close reason. */
  serverMessage: string | null;
}

export interface TerminalSink {
  write(bytes: Uint8Array): void;
  status(status: TerminalStatus): void;
  members(members: readonly Member[], you: string | null): void;
  /** True for viewers: the page shows "view only" and stops taking keystrokes. */
  readOnly(readOnly: boolean): void;
  /** Something the server sent that did not fit the protocol; for the console. */
  warn(message: string): void;
}

export interface TerminalClientOptions {
  /** The resolved `ws:`/`wss:` URL of the terminal socket, without size parameters. */
  wsUrl: string;
  size: { cols: number; rows: number };
  title?: string;
  factory: SocketFactory;
  timers: Timers;
  backoff?: Backoff;
  pingIntervalMs?: number;
  sink: TerminalSink;
}

export const PING_INTERVAL_MS = 30_000;

/**
 * Keystrokes typed while the page first connects and the shell starts are held back and sent
 * after the `hello` (if it allows typing), so a user who types at once loses nothing. Input
 * that would go past this many bytes, and everything typed after it, is dropped.
 */
export const MAX_TYPE_AHEAD_BYTES = 64 * 1024;

export class TerminalClient {
  private readonly connection: Connection;
  private readonly sink: TerminalSink;
  private size: { cols: number; rows: number };
  private status: TerminalStatus;
  /** Input goes out only after this socket's `hello` said we may type. */
  private helloOnThisSocket = false;
  /** Input frames typed before the `hello`, in order; see `MAX_TYPE_AHEAD_BYTES`. */
  private typeAhead: Bytes[] = [];
  private typeAheadBytes = 0;
  /** Set when input went past `MAX_TYPE_AHEAD_BYTES`: the rest is dropped until the hello. */
  private typeAheadOverflowed = false;
  /** Whether any socket of this page got a hello: type-ahead is for the first connection. */
  private everGreeted = false;
  private pingTimer: TimerHandle | null = null;
  private awaitingAnswer = false;

  constructor(private readonly options: TerminalClientOptions) {
    this.sink = options.sink;
    this.size = clampSize(options.size.cols, options.size.rows);
    this.status = {
      connection: { kind: "idle" },
      title: options.title ?? "",
      you: null,
      role: null,
      ready: false,
      exitCode: null,
      serverMessage: null,
    };
    this.connection = new Connection({
      url: () => {
        const u = new URL(options.wsUrl);
        u.searchParams.set("cols", String(this.size.cols));
        u.searchParams.set("rows", String(this.size.rows));
        return u.toString();
      },
      factory: options.factory,
      timers: options.timers,
      ...(options.backoff ? { backoff: options.backoff } : {}),
      handlers: {
        onOpen: () => this.opened(),
        onMessage: (data) => this.received(data),
        onState: (state) => this.stateChanged(state),
      },
    });
  }

  start(): void {
    this.connection.start();
  }

  /**
   * Keystrokes from xterm's `onData`. Sent at once when connected with a role that may type,
   * held back while the page first connects, dropped for viewers, while the connection is lost
   * and while it is re-established.
   */
  input(data: string): void {
    if (data.length > 0) this.sendInput(encodeInput(data));
  }

  /** Bytes from xterm's `onBinary`, handled like `input`. */
  binaryInput(data: string): void {
    if (data.length > 0) this.sendInput(encodeBinaryInput(data));
  }

  private sendInput(frame: Bytes): void {
    if (this.helloOnThisSocket) {
      if (this.mayType()) this.connection.send(frame);
      return;
    }
    // Only while the page first connects: keys typed blind during a reconnect are dropped.
    const kind = this.status.connection.kind;
    const opening = kind === "idle" || kind === "connecting" || kind === "open";
    if (!opening || this.everGreeted || this.typeAheadOverflowed) return;
    if (this.typeAheadBytes + frame.length > MAX_TYPE_AHEAD_BYTES) {
      // Drop this and everything after it: an Enter typed after a lost paste must not run
      // what was typed before the paste.
      this.typeAheadOverflowed = true;
      return;
    }
    this.typeAhead.push(frame);
    this.typeAheadBytes += frame.length;
  }

  private flushTypeAhead(): void {
    const held = this.typeAhead;
    this.typeAhead = [];
    this.typeAheadBytes = 0;
    this.typeAheadOverflowed = false;
    if (this.mayType()) for (const frame of held) this.connection.send(frame);
  }

  resize(cols: number, rows: number): void {
    const next = clampSize(cols, rows);
    if (next.cols === this.size.cols && next.rows === this.size.rows) return;
    this.size = next;
    this.connection.send(encodeResize(next.cols, next.rows));
  }

  reconnectNow(): void {
    this.connection.reconnectNow();
  }

  dispose(): void {
    this.stopPings();
    this.connection.dispose();
  }

  private mayType(): boolean {
    return this.helloOnThisSocket && (this.status.role === "owner" || this.status.role === "peer");
  }

  private opened(): void {
    this.helloOnThisSocket = false;
    // The URL carried the size at connect time; it may have changed while the socket opened.
    this.connection.send(encodeResize(this.size.cols, this.size.rows));
    this.startPings();
  }

  private received(data: string | Uint8Array): void {
    this.awaitingAnswer = false;
    if (typeof data !== "string") {
      this.sink.write(data);
      return;
    }
    const decoded = decodeServerMessage(data);
    if (decoded.ok === false) {
      this.sink.warn(`terminal socket: ${decoded.error}`);
      return;
    }
    if (decoded.ok === "ignored") return;
    const msg = decoded.value;
    switch (msg.type) {
      case "hello":
        this.helloOnThisSocket = true;
        this.connection.markHealthy();
        this.update({ you: msg.you, role: msg.role, ready: true, serverMessage: null, exitCode: null });
        this.sink.readOnly(msg.role === "viewer");
        this.sink.members(msg.members, msg.you);
        this.flushTypeAhead();
        this.everGreeted = true;
        break;
      case "members":
        this.sink.members(msg.members, this.status.you);
        break;
      case "pong":
        break;
      case "exit":
        this.connection.expectEnd("ended");
        this.update({ exitCode: msg.code });
        break;
      case "error":
        this.update({ serverMessage: msg.message });
        break;
    }
  }

  private stateChanged(state: ConnectionState): void {
    if (state.kind !== "open") {
      this.helloOnThisSocket = false;
      this.stopPings();
    }
    // Keys typed before a connection that failed are not replayed into a later one.
    if (state.kind === "waiting" || state.kind === "closed") {
      this.typeAhead = [];
      this.typeAheadBytes = 0;
      this.typeAheadOverflowed = false;
    }
    this.update({ connection: state, ready: this.helloOnThisSocket });
  }

  private update(patch: Partial<TerminalStatus>): void {
    this.status = { ...this.status, ...patch };
    this.sink.status(this.status);
  }

  private startPings(): void {
    this.stopPings();
    this.awaitingAnswer = false;
    const every = this.options.pingIntervalMs ?? PING_INTERVAL_MS;
    this.pingTimer = this.options.timers.setInterval(() => {
      // Nothing at all came back since the last ping: the connection is dead even if the
      // browser has not noticed (a laptop lid, a NAT that forgot us). Reconnect now.
      if (this.awaitingAnswer) {
        this.connection.drop();
        return;
      }
      this.awaitingAnswer = true;
      this.connection.send(encodePing());
    }, every);
  }

  private stopPings(): void {
    if (this.pingTimer !== null) {
      this.options.timers.clearInterval(this.pingTimer);
      this.pingTimer = null;
    }
  }
}

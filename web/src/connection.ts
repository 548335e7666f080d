// A WebSocket that comes back after a network blip. It owns one socket at a time, decides from
// the close code whether to reconnect, waits with backoff between attempts, and reports every
// state change. The terminal and grid clients put their protocols on top of it.

import { Backoff } from "./backoff";
import { finalCloseReason, type FinalReason } from "./protocol";
import { SOCKET_OPEN, type Bytes, type SocketFactory, type SocketLike, type TimerHandle, type Timers } from "./socket";

/** Why a connection stopped for good: the terminal reasons plus the grid's idle timeout. */
export type ClosedReason = FinalReason | "idle";

export type ConnectionState =
  | { kind: "idle" }
  | { kind: "connecting"; attempt: number }
  | { kind: "open" }
  | { kind: "waiting"; attempt: number; delayMs: number; retryAt: number; code: number }
  | { kind: "closed"; reason: ClosedReason; code: number };

export interface ConnectionHandlers {
  onOpen(): void;
  onMessage(data: string | Uint8Array): void;
  onState(state: ConnectionState): void;
}

export interface ConnectionOptions {
  /** Called before every attempt, so a reconnect carries the current terminal size. */
  url: () => string;
  factory: SocketFactory;
  timers: Timers;
  backoff?: Backoff;
  /** Maps a close to a final reason, or `null` to reconnect. Defaults to `finalCloseReason`. */
  classify?: (code: number, reason: string) => ClosedReason | null;
  handlers: ConnectionHandlers;
}

/** The close code the client uses when it gives up on a socket that stopped answering. */
export const CLIENT_DROP_CODE = 4000;
/** What a close that never arrived from the server looks like (the browser reports 1006). */
const ABNORMAL = 1006;

export class Connection {
  private socket: SocketLike | null = null;
  private retryTimer: TimerHandle | null = null;
  private endReason: ClosedReason | null = null;
  private disposed = false;
  private current: ConnectionState = { kind: "idle" };
  private readonly backoff: Backoff;
  private readonly classify: (code: number, reason: string) => ClosedReason | null;

  constructor(private readonly options: ConnectionOptions) {
    this.backoff = options.backoff ?? new Backoff();
    this.classify = options.classify ?? ((code) => finalCloseReason(code));
  }

  get state(): ConnectionState {
    return this.current;
  }

  start(): void {
    if (this.current.kind === "idle") this.connect();
  }

  /** Sends on the open socket; returns false (and drops `data`) when there is none. */
  send(data: string | Bytes): boolean {
    const s = this.socket;
    if (this.current.kind !== "open" || s === null || s.readyState !== SOCKET_OPEN) return false;
    s.send(data);
    return true;
  }

  /** The session proved healthy (the server said hello): the next blip starts at the base delay. */
  markHealthy(): void {
    this.backoff.reset();
  }

  /** The server announced the end (e.g. the shell exited): whatever close follows is final. */
  expectEnd(reason: ClosedReason): void {
    this.endReason = reason;
  }

  /** Skip the wait, or start again after a final close (the "Reconnect" button). */
  reconnectNow(): void {
    if (this.disposed) return;
    if (this.current.kind === "waiting") {
      this.clearRetry();
      this.connect();
    } else if (this.current.kind === "closed") {
      this.backoff.reset();
      this.connect();
    }
  }

  /** Give up on a socket that stopped answering and reconnect as after a blip. */
  drop(): void {
    const s = this.socket;
    if (s === null) return;
    this.detach(s);
    try {
      s.close(CLIENT_DROP_CODE, "no answer");
    } catch {
      // Closing a socket that is already failing may throw; it is gone either way.
    }
    this.closed(ABNORMAL, "");
  }

  /** Close for good (the page goes away); reports nothing more. */
  dispose(): void {
    this.disposed = true;
    this.clearRetry();
    const s = this.socket;
    if (s !== null) {
      this.detach(s);
      try {
        s.close(1000, "page closed");
      } catch {
        // Nothing to do: the page is leaving.
      }
    }
  }

  private setState(state: ConnectionState): void {
    this.current = state;
    if (!this.disposed) this.options.handlers.onState(state);
  }

  private connect(): void {
    this.endReason = null;
    this.setState({ kind: "connecting", attempt: this.backoff.attempts });
    let s: SocketLike;
    try {
      s = this.options.factory(this.options.url());
    } catch {
      // A constructor that throws (bad URL, blocked by policy) looks like any failed attempt.
      this.closed(ABNORMAL, "");
      return;
    }
    this.socket = s;
    s.binaryType = "arraybuffer";
    s.onopen = () => {
      if (this.socket !== s) return;
      this.setState({ kind: "open" });
      this.options.handlers.onOpen();
    };
    s.onmessage = (ev) => {
      if (this.socket !== s) return;
      const data = toMessage(ev.data);
      if (data !== null) this.options.handlers.onMessage(data);
    };
    s.onclose = (ev) => {
      if (this.socket !== s) return;
      this.detach(s);
      this.closed(ev.code, ev.reason);
    };
    // An error is always followed by a close, which is where the decision is made.
    s.onerror = () => {};
  }

  private closed(code: number, reason: string): void {
    this.socket = null;
    if (this.disposed) return;
    const final = this.endReason ?? this.classify(code, reason);
    if (final !== null) {
      this.setState({ kind: "closed", reason: final, code });
      return;
    }
    const delayMs = this.backoff.next();
    const retryAt = this.options.timers.now() + delayMs;
    this.retryTimer = this.options.timers.setTimeout(() => {
      this.retryTimer = null;
      this.connect();
    }, delayMs);
    this.setState({ kind: "waiting", attempt: this.backoff.attempts, delayMs, retryAt, code });
  }

  private detach(s: SocketLike): void {
    s.onopen = null;
    s.onmessage = null;
    s.onclose = null;
    s.onerror = null;
    if (this.socket === s) this.socket = null;
  }

  private clearRetry(): void {
    if (this.retryTimer !== null) {
      this.options.timers.clearTimeout(this.retryTimer);
      this.retryTimer = null;
    }
  }
}

function toMessage(data: unknown): string | Uint8Array | null {
  if (typeof data === "string") return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  // A Blob means binaryType was ignored; nothing sensible can be done with it synchronously.
  return null;
}

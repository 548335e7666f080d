// The seams between the clients and the browser: a WebSocket-shaped object, a clock with timers,
// and the URL of a socket. Clients take these as parameters so that tests drive them with fakes
// and no browser.

/** Bytes backed by a plain ArrayBuffer, which is what `WebSocket.send` accepts. */
export type Bytes = Uint8Array<ArrayBuffer>;

/** The part of the browser's `WebSocket` that the clients use. */
export interface SocketLike {
  binaryType: string;
  readonly readyState: number;
  send(data: string | Bytes): void;
  close(code?: number, reason?: string): void;
  onopen: Handler<unknown> | null;
  onmessage: Handler<{ data: unknown }> | null;
  onclose: Handler<{ code: number; reason: string }> | null;
  onerror: Handler<unknown> | null;
}

/**
 * An event handler property. Declared through a method so its parameter is checked both ways,
 * which lets the DOM's `(ev: MessageEvent) => any` stand in for `(ev: { data: unknown }) => void`.
 */
type Handler<E> = { bivarianceHack(ev: E): void }["bivarianceHack"];

/** Opens a socket to `url`; in the browser `(url) => new WebSocket(url)`. */
export type SocketFactory = (url: string) => SocketLike;

/** `WebSocket.OPEN`, spelled out because tests run where `WebSocket` does not exist. */
export const SOCKET_OPEN = 1;

export type TimerHandle = unknown;

/** Wall clock and timers; in the browser the globals, in tests a manual clock. */
export interface Timers {
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
  setInterval(fn: () => void, ms: number): TimerHandle;
  clearInterval(handle: TimerHandle): void;
}

export const browserTimers: Timers = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (h) => globalThis.clearTimeout(h as ReturnType<typeof setTimeout>),
  setInterval: (fn, ms) => globalThis.setInterval(fn, ms),
  clearInterval: (h) => globalThis.clearInterval(h as ReturnType<typeof setInterval>),
};

/** Where the page lives: `location.href` in the browser. */
export type PageUrl = string;

/**
 * Resolves the `data-ws-url` of a page against the page's own URL and turns http(s) into ws(s),
 * so `/api/v1/...` on an https page becomes `wss://host/api/v1/...`. Anything that is not
 * http(s) or ws(s) is refused: the attribute comes from our own server, but a typo should fail
 * loudly rather than open a socket somewhere odd.
 */
export function resolveWsUrl(raw: string, page: PageUrl, params: Record<string, string | number> = {}): URL {
  if (raw.trim() === "") throw new Error("the page gives no WebSocket URL (data-ws-url is empty)");
  let url: URL;
  try {
    url = new URL(raw, page);
  } catch {
    throw new Error(`the WebSocket URL ${JSON.stringify(raw)} is not a valid URL`);
  }
  switch (url.protocol) {
    case "http:":
      url.protocol = "ws:";
      break;
    case "https:":
      url.protocol = "wss:";
      break;
    case "ws:":
    case "wss:":
      break;
    default:
      throw new Error(`the WebSocket URL ${JSON.stringify(raw)} has the unsupported scheme ${url.protocol}`);
  }
  url.hash = "";
  for (const [key, value] of Object.entries(params)) url.searchParams.set(key, String(value));
  return url;
}

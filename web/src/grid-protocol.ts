// The grid socket protocol (docs/terminal-protocol.md): every message is a JSON text frame
// `{"pane":N,"type":...,"data":...}`; terminal bytes travel as base64 inside it.
//
// The messages are defined once, in Rust (`berth_types::grid`): their types here are generated
// from it (generated/protocol.ts), and test/protocol-fixtures.test.ts checks this file against
// every message that definition writes to test/fixtures/protocol.json.

import type * as wire from "./generated/protocol";
import { MAX_PANES } from "./grid-layout";
import type { Decoded } from "./protocol";

export type PaneState = wire.PaneState;

/** A server message as decoded: output as bytes, and an error's pane always present. */
export type GridServerMessage =
  | Exclude<wire.GridServerMessage, { type: "output" | "error" }>
  | { pane: number; type: "output"; data: Uint8Array }
  | { pane: number | null; type: "error"; data: string };

/** Output is chunked by the server; a frame larger than this is a broken or hostile server. */
export const MAX_GRID_FRAME_CHARS = 4 * 1024 * 1024;
const STATES: readonly string[] = ["connecting", "connected", "closed"];

export function bytesToBase64(bytes: Uint8Array): string {
  let binary = "";
  // fromCharCode takes arguments; chunks keep the argument list far below engine limits.
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/** Decodes standard base64; `null` if it is not. */
export function base64ToBytes(text: string): Uint8Array | null {
  let binary: string;
  try {
    binary = atob(text);
  } catch {
    return null;
  }
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

export function encodeGridInput(pane: number, bytes: Uint8Array): string {
  const message: wire.GridClientMessage = { pane, type: "input", data: bytesToBase64(bytes) };
  return JSON.stringify(message);
}

export function encodeGridResize(pane: number, cols: number, rows: number): string {
  const message: wire.GridClientMessage = { pane, type: "resize", data: { cols, rows } };
  return JSON.stringify(message);
}

/** Broadcast typing on or off: input for one pane then goes to every pane that may type. */
export function encodeGridBroadcast(on: boolean): string {
  const message: wire.GridClientMessage = { type: "broadcast", data: on };
  return JSON.stringify(message);
}

function isPane(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= 0 && v < MAX_PANES;
}

export function decodeGridMessage(text: string): Decoded<GridServerMessage> {
  if (text.length > MAX_GRID_FRAME_CHARS) return { ok: false, error: `grid message of ${text.length} characters is too large` };
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return { ok: false, error: "grid message is not JSON" };
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) return { ok: false, error: "grid message is not a JSON object" };
  const { pane, type, data } = v as { pane?: unknown; type?: unknown; data?: unknown };
  if (typeof type !== "string") return { ok: false, error: "grid message has no type" };
  if (type === "error") {
    if (pane !== null && pane !== undefined && !isPane(pane)) return { ok: false, error: "error.pane is not a pane number" };
    if (typeof data !== "string") return { ok: false, error: "error.data is not a string" };
    return { ok: true, value: { pane: isPane(pane) ? pane : null, type, data: data.slice(0, 4096) } };
  }
  if (type === "broadcast") {
    if (typeof data !== "boolean") return { ok: false, error: "broadcast.data is not true or false" };
    return { ok: true, value: { type, data } };
  }
  if (!isPane(pane)) return { ok: false, error: `${type.slice(0, 20)}.pane is not a pane number from 0 to ${MAX_PANES - 1}` };
  switch (type) {
    case "output": {
      if (typeof data !== "string") return { ok: false, error: "output.data is not a base64 string" };
      const bytes = base64ToBytes(data);
      if (bytes === null) return { ok: false, error: "output.data is not valid base64" };
      return { ok: true, value: { pane, type, data: bytes } };
    }
    case "status": {
      if (typeof data !== "object" || data === null) return { ok: false, error: "status.data is not an object" };
      const { state, title } = data as { state?: unknown; title?: unknown };
      if (typeof state !== "string" || !STATES.includes(state)) {
        return { ok: false, error: "status.data.state is not connecting, connected or closed" };
      }
      return { ok: true, value: { pane, type, data: { state: state as PaneState, title: typeof title === "string" ? title.slice(0, 200) : "" } } };
    }
    case "exit":
      if (typeof data !== "number" || !Number.isInteger(data)) return { ok: false, error: "exit.data is not an integer" };
      return { ok: true, value: { pane, type, data } };
    default:
      return { ok: "ignored", type: type.slice(0, 64) };
  }
}

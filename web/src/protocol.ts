// The terminal socket protocol (docs/terminal-protocol.md): binary frames carry bytes, text frames
// carry JSON control messages. Everything the server sends is checked here before the rest of
// the code sees it; a message that does not fit is reported, never half-used.
//
// The messages are defined once, in Rust (`berth_types::terminal`): their types here are
// generated from it (generated/protocol.ts), and test/protocol-fixtures.test.ts checks this file
// against every message that definition writes to test/fixtures/protocol.json.

import type * as wire from "./generated/protocol";
import type { Bytes } from "./socket";

export type Role = wire.SessionRole;
export type Member = wire.Member;
/** What a terminal is opened on. */
export type Target = wire.TerminalTarget;
export type ServerMessage = wire.ServerMessage;
type Hello = Extract<ServerMessage, { type: "hello" }>;

export type Decoded<T> = { ok: true; value: T } | { ok: false; error: string } | { ok: "ignored"; type: string };

/** Close codes the server uses; anything else is a network blip. */
export const CloseCode = {
  normal: 1000,
  unauthenticated: 4401,
  forbidden: 4403,
  notFound: 4404,
} as const;

/** Why a connection ended for good; `null` from `finalCloseReason` means "reconnect". */
export type FinalReason = "ended" | "unauthenticated" | "forbidden" | "not-found";

export function finalCloseReason(code: number): FinalReason | null {
  switch (code) {
    case CloseCode.normal:
      return "ended";
    case CloseCode.unauthenticated:
      return "unauthenticated";
    case CloseCode.forbidden:
      return "forbidden";
    case CloseCode.notFound:
      return "not-found";
    default:
      return null;
  }
}

const ROLES: readonly string[] = ["owner", "peer", "viewer"];
const TARGET_KINDS: readonly string[] = ["workspace", "machine"];
/** A text frame larger than this is not a control message; refuse it before JSON.parse. */
export const MAX_CONTROL_CHARS = 256 * 1024;
const MAX_MEMBERS = 1000;
const MAX_NAME_CHARS = 256;
const MAX_MESSAGE_CHARS = 4096;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function boundedString(v: unknown, max: number): v is string {
  return typeof v === "string" && v.length <= max;
}

function decodeTarget(v: unknown): Target | string {
  if (!isRecord(v)) return "target is not an object";
  if (typeof v.kind !== "string" || !TARGET_KINDS.includes(v.kind)) return "target.kind is not workspace or machine";
  if (!boundedString(v.id, MAX_NAME_CHARS) || v.id === "") return "target.id is not an id";
  return v.kind === "workspace" ? { kind: "workspace", id: v.id } : { kind: "machine", id: v.id };
}

function decodeMembers(v: unknown): Member[] | string {
  if (!Array.isArray(v)) return "members is not an array";
  if (v.length > MAX_MEMBERS) return `members has ${v.length} entries, more than ${MAX_MEMBERS}`;
  const out: Member[] = [];
  for (const [i, m] of v.entries()) {
    if (!isRecord(m)) return `members[${i}] is not an object`;
    if (!boundedString(m.username, MAX_NAME_CHARS) || m.username === "") return `members[${i}].username is not a name`;
    if (typeof m.role !== "string" || !ROLES.includes(m.role)) return `members[${i}].role is not owner, peer or viewer`;
    out.push({ username: m.username, role: m.role as Role });
  }
  return out;
}

/** Decodes one text frame from the terminal socket. Unknown `type`s are ignored (newer servers). */
export function decodeServerMessage(text: string): Decoded<ServerMessage> {
  if (text.length > MAX_CONTROL_CHARS) return { ok: false, error: `control message of ${text.length} characters is too large` };
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return { ok: false, error: "control message is not JSON" };
  }
  if (!isRecord(v)) return { ok: false, error: "control message is not a JSON object" };
  const type = v.type;
  if (typeof type !== "string") return { ok: false, error: "control message has no type" };
  switch (type) {
    case "hello": {
      const target = decodeTarget(v.target);
      if (typeof target === "string") return { ok: false, error: `hello.${target}` };
      if (v.workspace !== undefined && !boundedString(v.workspace, MAX_NAME_CHARS)) {
        return { ok: false, error: "hello.workspace is not a string" };
      }
      if (!boundedString(v.you, MAX_NAME_CHARS) || v.you === "") return { ok: false, error: "hello.you is not a name" };
      if (typeof v.role !== "string" || !ROLES.includes(v.role)) return { ok: false, error: "hello.role is not owner, peer or viewer" };
      const members = decodeMembers(v.members);
      if (typeof members === "string") return { ok: false, error: `hello: ${members}` };
      const hello: Hello = { type, target, you: v.you, role: v.role as Role, members };
      if (v.workspace !== undefined) hello.workspace = v.workspace;
      return { ok: true, value: hello };
    }
    case "members": {
      const members = decodeMembers(v.members);
      if (typeof members === "string") return { ok: false, error: members };
      return { ok: true, value: { type, members } };
    }
    case "pong":
      return { ok: true, value: { type } };
    case "exit":
      if (typeof v.code !== "number" || !Number.isInteger(v.code)) return { ok: false, error: "exit.code is not an integer" };
      return { ok: true, value: { type, code: v.code } };
    case "error":
      if (typeof v.message !== "string") return { ok: false, error: "error.message is not a string" };
      return { ok: true, value: { type, message: v.message.slice(0, MAX_MESSAGE_CHARS) } };
    default:
      return { ok: "ignored", type: type.slice(0, 64) };
  }
}

export function encodeResize(cols: number, rows: number): string {
  const message: wire.ClientMessage = { type: "resize", cols, rows };
  return JSON.stringify(message);
}

export function encodePing(): string {
  const message: wire.ClientMessage = { type: "ping" };
  return JSON.stringify(message);
}

const utf8 = new TextEncoder();

/** What xterm's `onData` gives (a JS string) as the UTF-8 bytes of a binary frame. */
export function encodeInput(data: string): Bytes {
  return utf8.encode(data);
}

/**
 * What xterm's `onBinary` gives: a string whose code units are bytes (mouse reports in the X10
 * encoding). Taken byte for byte, never UTF-8 encoded.
 */
export function encodeBinaryInput(data: string): Bytes {
  const out = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data.charCodeAt(i) & 0xff;
  return out;
}

/** Terminal sizes outside this range are a bug on our side; clamp them before they go out. */
export function clampSize(cols: number, rows: number): { cols: number; rows: number } {
  const clamp = (n: number, max: number) => (Number.isFinite(n) ? Math.min(Math.max(Math.floor(n), 1), max) : 1);
  return { cols: clamp(cols, 1000), rows: clamp(rows, 1000) };
}

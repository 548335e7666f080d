// The messages are defined once, in Rust (berth-types). Its test writes every terminal and grid
// message to fixtures/protocol.json (and fails when that file is stale); here the browser's
// decoders must read every server message exactly and its encoders must write every client
// message exactly, so a change on one side that the other does not follow fails `make test`.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { base64ToBytes, decodeGridMessage, encodeGridBroadcast, encodeGridInput, encodeGridResize } from "../src/grid-protocol";
import { decodeServerMessage, encodePing, encodeResize } from "../src/protocol";
import fixtures from "./fixtures/protocol.json";

type Fixture = Record<string, unknown> & { type: string };

function list(v: unknown): Fixture[] {
  assert.ok(Array.isArray(v) && v.length > 0, "fixtures missing: run the berth-types tests");
  return v as Fixture[];
}

function bytes(v: unknown): Uint8Array {
  const out = typeof v === "string" ? base64ToBytes(v) : null;
  assert.ok(out !== null, `not base64: ${JSON.stringify(v)}`);
  return out;
}

function num(v: unknown): number {
  assert.equal(typeof v, "number");
  return v as number;
}

function size(v: unknown): { cols: number; rows: number } {
  const d = v as { cols?: unknown; rows?: unknown };
  return { cols: num(d.cols), rows: num(d.rows) };
}

describe("protocol fixtures written by berth-types", () => {
  it("decodes every terminal server message", () => {
    for (const m of list(fixtures.terminal.server)) {
      assert.deepEqual(decodeServerMessage(JSON.stringify(m)), { ok: true, value: m }, JSON.stringify(m));
    }
  });

  it("encodes every terminal client message", () => {
    for (const m of list(fixtures.terminal.client)) {
      let text: string;
      switch (m.type) {
        case "resize":
          text = encodeResize(num(m.cols), num(m.rows));
          break;
        case "ping":
          text = encodePing();
          break;
        default:
          assert.fail(`web/ has no encoder for terminal client message ${m.type}`);
      }
      assert.deepEqual(JSON.parse(text), m);
    }
  });

  it("decodes every grid server message", () => {
    for (const m of list(fixtures.grid.server)) {
      const value = m.type === "output" ? { ...m, data: bytes(m.data) } : m;
      assert.deepEqual(decodeGridMessage(JSON.stringify(m)), { ok: true, value }, JSON.stringify(m));
    }
  });

  it("encodes every grid client message", () => {
    for (const m of list(fixtures.grid.client)) {
      let text: string;
      switch (m.type) {
        case "input":
          text = encodeGridInput(num(m.pane), bytes(m.data));
          break;
        case "resize": {
          const { cols, rows } = size(m.data);
          text = encodeGridResize(num(m.pane), cols, rows);
          break;
        }
        case "broadcast":
          text = encodeGridBroadcast(m.data === true);
          break;
        default:
          assert.fail(`web/ has no encoder for grid client message ${m.type}`);
      }
      assert.deepEqual(JSON.parse(text), m);
    }
  });
});

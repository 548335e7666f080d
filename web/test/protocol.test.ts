import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Backoff } from "../src/backoff";
import {
  clampSize,
  decodeServerMessage,
  encodeBinaryInput,
  encodeInput,
  encodePing,
  encodeResize,
  finalCloseReason,
  MAX_CONTROL_CHARS,
} from "../src/protocol";
import { resolveWsUrl } from "../src/socket";

function decodeError(text: string): string {
  const d = decodeServerMessage(text);
  assert.equal(d.ok, false, `expected an error for ${text.slice(0, 80)}`);
  return d.ok === false ? d.error : "";
}

describe("terminal protocol", () => {
  it("decodes every server message", () => {
    const hello = {
      type: "hello",
      target: { kind: "workspace", id: "0f6c0c8e-4a4f-4f57-9a55-0d5c1f1d1a11" },
      workspace: "0f6c0c8e-4a4f-4f57-9a55-0d5c1f1d1a11",
      you: "alice",
      role: "peer",
      members: [{ username: "alice", role: "peer", extra: 1 }],
    };
    assert.deepEqual(decodeServerMessage(JSON.stringify(hello)), {
      ok: true,
      value: { ...hello, members: [{ username: "alice", role: "peer" }] },
    });
    assert.deepEqual(decodeServerMessage('{"type":"members","members":[]}'), { ok: true, value: { type: "members", members: [] } });
    assert.deepEqual(decodeServerMessage('{"type":"pong"}'), { ok: true, value: { type: "pong" } });
    assert.deepEqual(decodeServerMessage('{"type":"exit","code":-1}'), { ok: true, value: { type: "exit", code: -1 } });
    assert.deepEqual(decodeServerMessage('{"type":"error","message":"stopped"}'), { ok: true, value: { type: "error", message: "stopped" } });
  });

  it("ignores message types it does not know", () => {
    assert.deepEqual(decodeServerMessage('{"type":"cursor","x":1}'), { ok: "ignored", type: "cursor" });
  });

  it("refuses malformed messages with a reason", () => {
    assert.match(decodeError("not json"), /not JSON/);
    assert.match(decodeError("[1,2]"), /not a JSON object/);
    assert.match(decodeError('{"kind":"hello"}'), /no type/);
    assert.match(decodeError('{"type":"hello","target":{"kind":"machine","id":"m"},"you":"a","role":"admin","members":[]}'), /hello.role/);
    assert.match(decodeError('{"type":"hello","target":{"kind":"machine","id":"m"},"you":"","role":"owner","members":[]}'), /hello.you/);
    assert.match(decodeError('{"type":"hello","workspace":"w","you":"a","role":"owner","members":[]}'), /hello.target is not an object/);
    assert.match(decodeError('{"type":"hello","target":{"kind":"vm","id":"m"},"you":"a","role":"owner","members":[]}'), /hello.target.kind/);
    assert.match(decodeError('{"type":"hello","target":{"kind":"machine","id":""},"you":"a","role":"owner","members":[]}'), /hello.target.id/);
    assert.match(decodeError('{"type":"hello","target":{"kind":"machine","id":"m"},"workspace":7,"you":"a","role":"owner","members":[]}'), /hello.workspace/);
    assert.match(decodeError('{"type":"hello","target":{"kind":"machine","id":"m"},"you":"a","role":"owner"}'), /members is not an array/);
    assert.match(decodeError('{"type":"members","members":[{"username":"","role":"owner"}]}'), /members\[0\].username/);
    assert.match(decodeError('{"type":"members","members":[{"username":"a","role":"root"}]}'), /members\[0\].role/);
    assert.match(decodeError('{"type":"members","members":[7]}'), /members\[0\] is not an object/);
    assert.match(decodeError('{"type":"exit","code":"0"}'), /exit.code/);
    assert.match(decodeError('{"type":"exit","code":1.5}'), /exit.code/);
    assert.match(decodeError('{"type":"error"}'), /error.message/);
  });

  it("refuses oversized messages before parsing them", () => {
    const huge = JSON.stringify({ type: "error", message: "x".repeat(MAX_CONTROL_CHARS) });
    assert.match(decodeError(huge), /too large/);
    const many = JSON.stringify({ type: "members", members: Array.from({ length: 1001 }, (_, i) => ({ username: `u${i}`, role: "viewer" })) });
    assert.match(decodeError(many), /more than 1000/);
  });

  it("shortens a long error message", () => {
    const d = decodeServerMessage(JSON.stringify({ type: "error", message: "y".repeat(10_000) }));
    assert.ok(d.ok === true && d.value.type === "error" && d.value.message.length === 4096);
  });

  it("encodes client messages", () => {
    assert.equal(encodeResize(120, 40), '{"type":"resize","cols":120,"rows":40}');
    assert.equal(encodePing(), '{"type":"ping"}');
    assert.deepEqual(encodeInput("a€"), new Uint8Array([0x61, 0xe2, 0x82, 0xac]));
    assert.deepEqual(encodeBinaryInput("\x00\x80\xff"), new Uint8Array([0x00, 0x80, 0xff]));
  });

  it("clamps sizes to 1..1000", () => {
    assert.deepEqual(clampSize(0, -5), { cols: 1, rows: 1 });
    assert.deepEqual(clampSize(80.7, 5000), { cols: 80, rows: 1000 });
    assert.deepEqual(clampSize(Number.NaN, Infinity), { cols: 1, rows: 1 });
  });

  it("reconnects on every close code but the final ones", () => {
    assert.equal(finalCloseReason(1000), "ended");
    assert.equal(finalCloseReason(4401), "unauthenticated");
    assert.equal(finalCloseReason(4403), "forbidden");
    assert.equal(finalCloseReason(4404), "not-found");
    for (const code of [1001, 1006, 1011, 1012, 4000, 4500]) assert.equal(finalCloseReason(code), null);
  });
});

describe("WebSocket URLs", () => {
  it("resolves relative URLs against the page with a matching scheme", () => {
    assert.equal(resolveWsUrl("/api/v1/workspaces/w1/terminal", "https://berth.test/w/w1").href, "wss://berth.test/api/v1/workspaces/w1/terminal");
    assert.equal(resolveWsUrl("/api/v1/grids/g/ws", "http://127.0.0.1:8080/g/g").href, "ws://127.0.0.1:8080/api/v1/grids/g/ws");
    assert.equal(resolveWsUrl("wss://other.test/x#frag", "https://berth.test/").href, "wss://other.test/x");
  });

  it("adds query parameters", () => {
    const u = resolveWsUrl("/t?x=1", "https://berth.test/", { cols: 80, rows: 24 });
    assert.equal(u.search, "?x=1&cols=80&rows=24");
  });

  it("refuses empty and non-web URLs", () => {
    assert.throws(() => resolveWsUrl("", "https://berth.test/"), /empty/);
    assert.throws(() => resolveWsUrl("javascript:alert(1)", "https://berth.test/"), /unsupported scheme javascript:/);
    assert.throws(() => resolveWsUrl("file:///etc/passwd", "https://berth.test/"), /unsupported scheme/);
    assert.throws(() => resolveWsUrl("http://[::1", "https://berth.test/"), /not a valid URL/);
  });
});

describe("backoff", () => {
  it("doubles from 0.5 s up to the 10 s cap", () => {
    const b = new Backoff({ random: () => 0 });
    assert.deepEqual(Array.from({ length: 8 }, () => b.next()), [500, 1000, 2000, 4000, 8000, 10000, 10000, 10000]);
    assert.equal(b.attempts, 8);
  });

  it("jitters each delay down by at most a quarter, never above the cap", () => {
    const b = new Backoff({ random: () => 0.999999 });
    const delays = Array.from({ length: 8 }, () => b.next());
    assert.deepEqual(delays, [375, 750, 1500, 3000, 6000, 7500, 7500, 7500]);
    let seed = 7;
    const lcg = () => ((seed = (seed * 48271) % 2147483647) / 2147483647);
    const c = new Backoff({ random: lcg });
    for (let i = 0; i < 100; i++) {
      const d = c.next();
      const nominal = Math.min(10000, 500 * 2 ** i);
      assert.ok(d >= nominal * 0.75 - 1 && d <= nominal, `delay ${d} outside [${nominal * 0.75}, ${nominal}]`);
    }
  });

  it("starts over after a reset", () => {
    const b = new Backoff({ random: () => 0 });
    b.next();
    b.next();
    b.reset();
    assert.equal(b.next(), 500);
  });

  it("refuses nonsense options", () => {
    assert.throws(() => new Backoff({ baseMs: 0 }), /base/);
    assert.throws(() => new Backoff({ baseMs: 500, capMs: 100 }), /base/);
    assert.throws(() => new Backoff({ jitter: 2 }), /jitter/);
  });
});

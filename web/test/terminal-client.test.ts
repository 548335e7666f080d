import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Backoff } from "../src/backoff";
import type { Member } from "../src/protocol";
import { MAX_TYPE_AHEAD_BYTES, TerminalClient, type TerminalStatus } from "../src/terminal-client";
import { FakeNetwork, FakeTimers, bytes, noJitter } from "./fakes";

const URL_ = "wss://berth.test/api/v1/workspaces/w1/terminal";
const alice: Member = { username: "alice", role: "owner" };

function setup(size = { cols: 80, rows: 24 }) {
  const net = new FakeNetwork();
  const timers = new FakeTimers();
  const written: Uint8Array[] = [];
  const statuses: TerminalStatus[] = [];
  const members: { list: readonly Member[]; you: string | null }[] = [];
  const readOnly: boolean[] = [];
  const warnings: string[] = [];
  const client = new TerminalClient({
    wsUrl: URL_,
    size,
    title: "alice@python",
    factory: net.factory,
    timers,
    backoff: new Backoff({ random: noJitter }),
    sink: {
      write: (b) => written.push(b),
      status: (s) => statuses.push(s),
      members: (list, you) => members.push({ list, you }),
      readOnly: (r) => readOnly.push(r),
      warn: (m) => warnings.push(m),
    },
  });
  const status = () => {
    const s = statuses[statuses.length - 1];
    assert.ok(s, "no status was reported");
    return s;
  };
  return { net, timers, client, written, statuses, members, readOnly, warnings, status };
}

function hello(role: "owner" | "peer" | "viewer", you = "alice") {
  const id = "0f6c0c8e-4a4f-4f57-9a55-0d5c1f1d1a11";
  return { type: "hello", target: { kind: "workspace", id }, workspace: id, you, role, members: [alice, { username: "bob", role: "viewer" }] };
}

/** Starts the client and completes the handshake as `role`. */
function connected(role: "owner" | "peer" | "viewer" = "owner") {
  const t = setup();
  t.client.start();
  t.net.last.serverOpen();
  t.net.last.serverJson(hello(role));
  return t;
}

describe("terminal client", () => {
  it("opens the socket with the initial size and sends it again once open", () => {
    const t = setup({ cols: 120, rows: 40 });
    t.client.start();
    assert.equal(t.net.sockets.length, 1);
    const url = new URL(t.net.last.url);
    assert.equal(url.origin + url.pathname, URL_);
    assert.equal(url.searchParams.get("cols"), "120");
    assert.equal(url.searchParams.get("rows"), "40");
    assert.equal(t.net.last.binaryType, "arraybuffer");
    assert.equal(t.status().connection.kind, "connecting");
    t.net.last.serverOpen();
    assert.deepEqual(t.net.last.sentJson, [{ type: "resize", cols: 120, rows: 40 }]);
    assert.equal(t.status().connection.kind, "open");
  });

  it("sends keyboard input as binary UTF-8 frames after the hello", () => {
    const t = connected("owner");
    t.client.input("ls é€\r");
    t.client.binaryInput("\x1b[M \xff!");
    const [text, mouse] = t.net.last.sentBinary;
    assert.deepEqual(text, new TextEncoder().encode("ls é€\r"));
    assert.deepEqual(mouse, bytes(0x1b, 0x5b, 0x4d, 0x20, 0xff, 0x21));
    assert.deepEqual(t.readOnly, [false]);
    assert.equal(t.status().role, "owner");
    assert.equal(t.status().you, "alice");
  });

  it("holds input typed before the hello and sends it, in order, once the hello allows typing", () => {
    const t = setup();
    t.client.start();
    t.client.input("ec");
    t.net.last.serverOpen();
    t.client.input("ho hi\r");
    assert.deepEqual(t.net.last.sentBinary, [], "nothing reaches the server before the hello");
    assert.equal(t.status().ready, false);
    t.net.last.serverJson(hello("peer"));
    t.client.input("!");
    const sent = t.net.last.sentBinary.map((b) => new TextDecoder().decode(b));
    assert.deepEqual(sent, ["ec", "ho hi\r", "!"]);
    assert.equal(t.status().ready, true);
  });

  it("throws away held input when the hello makes us a viewer", () => {
    const t = setup();
    t.client.start();
    t.net.last.serverOpen();
    t.client.input("rm -rf /\r");
    t.net.last.serverJson(hello("viewer"));
    assert.deepEqual(t.net.last.sentBinary, []);
  });

  it("does not replay keys typed while the connection was lost or coming back", () => {
    const t = connected("owner");
    t.net.last.serverClose(1006, "");
    assert.equal(t.status().connection.kind, "waiting");
    t.client.input("typed into the void\r");
    t.timers.advance(60_000);
    t.client.input("while reconnecting\r");
    t.net.last.serverOpen();
    t.client.input("before the new hello\r");
    t.net.last.serverJson(hello("owner"));
    t.client.input("after it");
    const sent = t.net.last.sentBinary.map((b) => new TextDecoder().decode(b));
    assert.deepEqual(sent, ["after it"]);
  });

  it("drops everything after an overflow, so a later Enter runs nothing half-typed", () => {
    const t = setup();
    t.client.start();
    t.client.input("rm -rf ");
    t.client.input("x".repeat(MAX_TYPE_AHEAD_BYTES));
    t.client.input("\r");
    t.net.last.serverOpen();
    t.net.last.serverJson(hello("owner"));
    const sent = t.net.last.sentBinary.map((b) => new TextDecoder().decode(b));
    assert.deepEqual(sent, ["rm -rf "]);
  });

  it("holds at most MAX_TYPE_AHEAD_BYTES before the hello", () => {
    const t = setup();
    t.client.start();
    const chunk = "x".repeat(1024);
    for (let i = 0; i < MAX_TYPE_AHEAD_BYTES / 1024 + 5; i++) t.client.input(chunk);
    t.net.last.serverOpen();
    t.net.last.serverJson(hello("owner"));
    const total = t.net.last.sentBinary.reduce((n, b) => n + b.length, 0);
    assert.equal(total, MAX_TYPE_AHEAD_BYTES);
  });

  it("sends resizes as JSON text frames, once per change", () => {
    const t = connected();
    t.client.resize(100, 30);
    t.client.resize(100, 30);
    t.client.resize(0, 99999);
    assert.deepEqual(t.net.last.sentJson, [
      { type: "resize", cols: 80, rows: 24 },
      { type: "resize", cols: 100, rows: 30 },
      { type: "resize", cols: 1, rows: 1000 },
    ]);
  });

  it("writes binary output frames to the terminal as bytes", () => {
    const t = connected();
    t.net.last.serverBinary(bytes(0x1b, 0x5b, 0x33, 0x31, 0x6d, 0x68, 0x69));
    assert.deepEqual(t.written, [bytes(0x1b, 0x5b, 0x33, 0x31, 0x6d, 0x68, 0x69)]);
  });

  it("in view-only mode sends no input at all and tells the page", () => {
    const t = connected("viewer");
    t.client.input("rm -rf /\r");
    t.client.binaryInput("\x1b[M !!");
    assert.deepEqual(t.net.last.sentBinary, []);
    assert.deepEqual(t.readOnly, [true]);
    assert.equal(t.status().role, "viewer");
  });

  it("reports members from the hello and from later updates", () => {
    const t = connected();
    t.net.last.serverJson({ type: "members", members: [alice] });
    assert.equal(t.members.length, 2);
    assert.deepEqual(t.members[0]?.list.map((m) => m.username), ["alice", "bob"]);
    assert.deepEqual(t.members[1], { list: [alice], you: "alice" });
  });

  it("warns about malformed control messages and carries on", () => {
    const t = connected();
    t.net.last.serverJson("{not json");
    t.net.last.serverJson({ type: "members", members: "everyone" });
    t.net.last.serverJson({ type: "from-the-future" });
    assert.equal(t.warnings.length, 2);
    assert.match(t.warnings[0] ?? "", /not JSON/);
    assert.match(t.warnings[1] ?? "", /members is not an array/);
    t.client.input("x");
    assert.equal(t.net.last.sentBinary.length, 1);
  });

  it("reconnects after an abnormal close (1006) with backoff and sends the current size", () => {
    const t = connected();
    const first = t.net.last;
    first.serverClose(1006);
    const waiting = t.status().connection;
    assert.equal(waiting.kind, "waiting");
    assert.equal(waiting.kind === "waiting" && waiting.delayMs, 500);
    // Typing while disconnected is dropped, never replayed into a new shell later.
    t.client.input("lost");
    t.client.resize(132, 43);
    t.timers.advance(499);
    assert.equal(t.net.sockets.length, 1);
    t.timers.advance(1);
    assert.equal(t.net.sockets.length, 2);
    const second = t.net.last;
    assert.equal(new URL(second.url).searchParams.get("cols"), "132");
    assert.equal(new URL(second.url).searchParams.get("rows"), "43");
    assert.equal(t.status().connection.kind, "connecting");
    second.serverOpen();
    assert.deepEqual(second.sent, [JSON.stringify({ type: "resize", cols: 132, rows: 43 })]);
    assert.deepEqual(first.sentBinary, []);
  });

  it("doubles the delay while attempts keep failing and starts over after a hello", () => {
    const t = connected();
    const delays: number[] = [];
    for (let i = 0; i < 7; i++) {
      t.net.last.serverClose(1011);
      const s = t.status().connection;
      assert.equal(s.kind, "waiting");
      if (s.kind === "waiting") {
        delays.push(s.delayMs);
        t.timers.advance(s.delayMs);
      }
    }
    assert.deepEqual(delays, [500, 1000, 2000, 4000, 8000, 10000, 10000]);
    t.net.last.serverOpen();
    t.net.last.serverJson(hello("owner"));
    t.net.last.serverClose(1006);
    const s = t.status().connection;
    assert.equal(s.kind === "waiting" && s.delayMs, 500);
  });

  it("does not reconnect after a normal close (1000) until asked", () => {
    const t = connected();
    t.net.last.serverClose(1000);
    assert.deepEqual(t.status().connection, { kind: "closed", reason: "ended", code: 1000 });
    t.timers.advance(60_000);
    assert.equal(t.net.sockets.length, 1);
    assert.equal(t.timers.pending, 0);
    t.client.reconnectNow();
    assert.equal(t.net.sockets.length, 2);
  });

  for (const [code, reason] of [
    [4401, "unauthenticated"],
    [4403, "forbidden"],
    [4404, "not-found"],
  ] as const) {
    it(`does not reconnect after close ${code}`, () => {
      const t = connected();
      t.net.last.serverJson({ type: "error", message: "nope" });
      t.net.last.serverClose(code);
      assert.deepEqual(t.status().connection, { kind: "closed", reason, code });
      assert.equal(t.status().serverMessage, "nope");
      t.timers.advance(60_000);
      assert.equal(t.net.sockets.length, 1);
    });
  }

  it("treats any close after an exit message as the end of the session", () => {
    const t = connected();
    t.net.last.serverJson({ type: "exit", code: 130 });
    t.net.last.serverClose(1006);
    assert.equal(t.status().connection.kind, "closed");
    assert.equal(t.status().exitCode, 130);
    t.timers.advance(60_000);
    assert.equal(t.net.sockets.length, 1);
  });

  it("pings every 30 s while open and reconnects when nothing answers", () => {
    const t = connected();
    const s = t.net.last;
    t.timers.advance(30_000);
    assert.deepEqual(s.sentJson.slice(1), [{ type: "ping" }]);
    s.serverJson({ type: "pong" });
    t.timers.advance(30_000);
    assert.deepEqual(s.sentJson.slice(1), [{ type: "ping" }, { type: "ping" }]);
    // No pong and no output for a whole interval: the socket is dead.
    t.timers.advance(30_000);
    assert.deepEqual(s.closedWith, { code: 4000, reason: "no answer" });
    assert.equal(t.status().connection.kind, "waiting");
    t.timers.advance(500);
    assert.equal(t.net.sockets.length, 2);
  });

  it("counts output as an answer to a ping", () => {
    const t = connected();
    t.timers.advance(30_000);
    t.net.last.serverBinary(bytes(0x41));
    t.timers.advance(30_000);
    assert.equal(t.net.last.closedWith, null);
    assert.equal(t.net.sockets.length, 1);
  });

  it("stops pinging while disconnected", () => {
    const t = connected();
    t.net.last.serverClose(1000);
    t.timers.advance(120_000);
    assert.deepEqual(t.net.last.sentJson, [{ type: "resize", cols: 80, rows: 24 }]);
  });

  it("ignores a socket it already gave up on", () => {
    const t = connected();
    const old = t.net.last;
    t.timers.advance(60_000); // ping unanswered -> dropped
    t.timers.advance(500);
    const fresh = t.net.last;
    assert.notEqual(old, fresh);
    old.serverBinary(bytes(0x42));
    old.serverClose(1000);
    assert.deepEqual(t.written, []);
    assert.equal(t.status().connection.kind, "connecting");
  });

  it("skips the wait when asked to reconnect now", () => {
    const t = connected();
    t.net.last.serverClose(1006);
    t.client.reconnectNow();
    assert.equal(t.net.sockets.length, 2);
    assert.equal(t.status().connection.kind, "connecting");
    // The skipped timer must not open a third socket later.
    t.timers.advance(60_000);
    assert.equal(t.net.sockets.length, 2);
  });

  it("treats a socket that cannot even be constructed as a blip", () => {
    const t = setup();
    const timers = new FakeTimers();
    let calls = 0;
    const states: string[] = [];
    const client = new TerminalClient({
      wsUrl: URL_,
      size: { cols: 80, rows: 24 },
      factory: (url) => {
        calls += 1;
        if (calls === 1) throw new SyntaxError("blocked");
        return t.net.factory(url);
      },
      timers,
      backoff: new Backoff({ random: noJitter }),
      sink: { write: () => {}, status: (s) => states.push(s.connection.kind), members: () => {}, readOnly: () => {}, warn: () => {} },
    });
    client.start();
    assert.deepEqual(states, ["connecting", "waiting"]);
    timers.advance(500);
    assert.equal(t.net.sockets.length, 1);
  });

  it("closes the socket and schedules nothing when disposed", () => {
    const t = connected();
    t.client.dispose();
    assert.deepEqual(t.net.last.closedWith, { code: 1000, reason: "page closed" });
    assert.equal(t.timers.pending, 0);
  });
});

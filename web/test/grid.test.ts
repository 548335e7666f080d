import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Backoff } from "../src/backoff";
import type { ConnectionState } from "../src/connection";
import { GridClient } from "../src/grid-client";
import { LAYOUTS, parseLayout, parsePanes, slotCount, slotRects, type LayoutName, type Rect } from "../src/grid-layout";
import { base64ToBytes, bytesToBase64, decodeGridMessage, encodeGridInput, encodeGridResize } from "../src/grid-protocol";
import { FakeNetwork, FakeTimers, noJitter } from "./fakes";

describe("grid layout", () => {
  it("knows the four layouts, rows by columns", () => {
    assert.deepEqual(
      Object.keys(LAYOUTS).map((l) => [l, slotCount(l as LayoutName)]),
      [["single", 1], ["grid2x2", 4], ["grid1x3", 3], ["grid2x1", 2]],
    );
    assert.throws(() => parseLayout("grid3x3"), /unknown grid layout "grid3x3"/);
    assert.throws(() => parseLayout("toString"), /unknown grid layout/);
  });

  it("places slots row by row", () => {
    assert.deepEqual(slotRects("grid2x2", 200, 100, 0), [
      { x: 0, y: 0, width: 100, height: 50 },
      { x: 100, y: 0, width: 100, height: 50 },
      { x: 0, y: 50, width: 100, height: 50 },
      { x: 100, y: 50, width: 100, height: 50 },
    ]);
    assert.deepEqual(slotRects("grid1x3", 300, 90, 0).map((r) => [r.x, r.y]), [[0, 0], [100, 0], [200, 0]]);
    assert.deepEqual(slotRects("grid2x1", 300, 90, 0).map((r) => [r.x, r.y]), [[0, 0], [0, 45]]);
    assert.deepEqual(slotRects("single", 640, 480, 4), [{ x: 0, y: 0, width: 640, height: 480 }]);
  });

  it("tiles the area exactly in whole pixels, whatever the size", () => {
    for (const layout of Object.keys(LAYOUTS) as LayoutName[]) {
      for (const [w, h, gap] of [[1001, 777, 4], [1920, 1080, 3], [7, 5, 1], [0, 0, 4]] as const) {
        const rects = slotRects(layout, w, h, gap);
        const { rows, cols } = LAYOUTS[layout];
        assert.equal(rects.length, rows * cols);
        for (const r of rects) for (const v of [r.x, r.y, r.width, r.height]) assert.ok(Number.isInteger(v) && v >= 0, `${layout} ${JSON.stringify(r)}`);
        const row0 = rects.slice(0, cols);
        const widths = row0.reduce((s, r) => s + r.width, 0) + gap * (cols - 1);
        assert.equal(widths, Math.max(w, gap * (cols - 1)), `${layout} ${w}x${h}`);
        const col0 = rects.filter((_, i) => i % cols === 0);
        assert.equal(col0.reduce((s, r) => s + r.height, 0) + gap * (rows - 1), Math.max(h, gap * (rows - 1)));
        // Neighbours touch across exactly one gap: no overlap, no lost pixel.
        for (let i = 1; i < row0.length; i++) {
          const a = row0[i - 1] as Rect;
          const b = row0[i] as Rect;
          assert.equal(b.x, a.x + a.width + gap);
        }
      }
    }
  });

  it("reads data-panes and refuses what does not fit the layout", () => {
    assert.deepEqual(parsePanes('[{"pane":2,"title":"b"},{"pane":0,"title":"a"},{"pane":1}]', "grid1x3"), [
      { pane: 0, title: "a" },
      { pane: 1, title: "" },
      { pane: 2, title: "b" },
    ]);
    assert.throws(() => parsePanes("{", "single"), /not JSON/);
    assert.throws(() => parsePanes('{"pane":0}', "single"), /not a JSON array/);
    assert.throws(() => parsePanes('[{"pane":1}]', "single"), /from 0 to 0 for layout single/);
    assert.throws(() => parsePanes('[{"pane":-1}]', "grid2x2"), /from 0 to 3/);
    assert.throws(() => parsePanes('[{"pane":"0"}]', "grid2x2"), /pane must be an integer/);
    assert.throws(() => parsePanes('[{"pane":0},{"pane":0}]', "grid2x2"), /pane 0 twice/);
    assert.throws(() => parsePanes("[null]", "grid2x2"), /not an object/);
  });
});

describe("grid protocol", () => {
  it("round-trips every byte through base64, in large chunks too", () => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    assert.deepEqual(base64ToBytes(bytesToBase64(all)), all);
    const big = Uint8Array.from({ length: 100_003 }, (_, i) => (i * 31) & 0xff);
    assert.deepEqual(base64ToBytes(bytesToBase64(big)), big);
    assert.equal(bytesToBase64(new TextEncoder().encode("hi\n")), "aGkK");
    assert.equal(base64ToBytes("not base64!"), null);
  });

  it("encodes input and resize", () => {
    assert.equal(encodeGridInput(2, new TextEncoder().encode("ls\r")), '{"pane":2,"type":"input","data":"bHMN"}');
    assert.equal(encodeGridResize(1, 80, 24), '{"pane":1,"type":"resize","data":{"cols":80,"rows":24}}');
  });

  it("decodes server messages", () => {
    assert.deepEqual(decodeGridMessage('{"pane":0,"type":"output","data":"aGkK"}'), { ok: true, value: { pane: 0, type: "output", data: new Uint8Array([104, 105, 10]) } });
    assert.deepEqual(decodeGridMessage('{"pane":3,"type":"status","data":{"state":"connected","title":"alice@base"}}'), {
      ok: true,
      value: { pane: 3, type: "status", data: { state: "connected", title: "alice@base" } },
    });
    assert.deepEqual(decodeGridMessage('{"pane":1,"type":"exit","data":0}'), { ok: true, value: { pane: 1, type: "exit", data: 0 } });
    assert.deepEqual(decodeGridMessage('{"pane":null,"type":"error","data":"grid stopped"}'), { ok: true, value: { pane: null, type: "error", data: "grid stopped" } });
    assert.deepEqual(decodeGridMessage('{"pane":1,"type":"error","data":"host down"}'), { ok: true, value: { pane: 1, type: "error", data: "host down" } });
    assert.deepEqual(decodeGridMessage('{"pane":1,"type":"bell"}'), { ok: "ignored", type: "bell" });
  });

  it("refuses malformed messages with a reason", () => {
    const error = (text: string) => {
      const d = decodeGridMessage(text);
      return d.ok === false ? d.error : `accepted: ${text}`;
    };
    assert.match(error("]"), /not JSON/);
    assert.match(error('"output"'), /not a JSON object/);
    assert.match(error('{"pane":0}'), /no type/);
    assert.match(error('{"pane":4,"type":"output","data":""}'), /pane number from 0 to 3/);
    assert.match(error('{"type":"output","data":""}'), /pane number/);
    assert.match(error('{"pane":0,"type":"output","data":"%%%"}'), /not valid base64/);
    assert.match(error('{"pane":0,"type":"output","data":[1,2]}'), /not a base64 string/);
    assert.match(error('{"pane":0,"type":"status","data":{"state":"dancing"}}'), /state is not/);
    assert.match(error('{"pane":0,"type":"status","data":"connected"}'), /status.data is not an object/);
    assert.match(error('{"pane":0,"type":"exit","data":"0"}'), /exit.data/);
    assert.match(error('{"pane":9,"type":"error","data":"x"}'), /error.pane/);
    assert.match(error('{"pane":0,"type":"error","data":{}}'), /error.data/);
  });
});

function gridSetup(panes = [0, 1, 2]) {
  const net = new FakeNetwork();
  const timers = new FakeTimers();
  const calls: unknown[][] = [];
  const states: ConnectionState[] = [];
  const client = new GridClient({
    wsUrl: "wss://berth.test/api/v1/grids/g1/ws",
    panes,
    factory: net.factory,
    timers,
    backoff: new Backoff({ random: noJitter }),
    sink: {
      output: (pane, bytes) => calls.push(["output", pane, new TextDecoder().decode(bytes)]),
      paneStatus: (pane, state, title) => calls.push(["status", pane, state, title]),
      paneExit: (pane, code) => calls.push(["exit", pane, code]),
      error: (pane, message) => calls.push(["error", pane, message]),
      connection: (state) => states.push(state),
      broadcast: (on) => calls.push(["broadcast", on]),
      warn: (message) => calls.push(["warn", message]),
    },
  });
  const state = () => states[states.length - 1];
  return { net, timers, client, calls, state };
}

describe("grid client", () => {
  it("sends input and resizes for its panes over one socket", () => {
    const g = gridSetup();
    g.client.resize(0, 80, 24);
    g.client.start();
    assert.equal(g.net.last.url, "wss://berth.test/api/v1/grids/g1/ws");
    g.net.last.serverOpen();
    g.client.resize(1, 100, 30);
    g.client.input(1, "uptime\r");
    g.client.binaryInput(2, "\x1b[M\xff");
    g.client.input(3, "not shown on this page");
    assert.deepEqual(g.net.last.sentJson, [
      { pane: 0, type: "resize", data: { cols: 80, rows: 24 } },
      { pane: 1, type: "resize", data: { cols: 100, rows: 30 } },
      { pane: 1, type: "input", data: "dXB0aW1lDQ==" },
      { pane: 2, type: "input", data: "G1tN/w==" },
    ]);
    assert.equal(g.net.sockets.length, 1);
  });

  it("routes server messages to panes and ignores panes it does not show", () => {
    const g = gridSetup([0, 1]);
    g.client.start();
    g.net.last.serverOpen();
    g.net.last.serverJson({ pane: 1, type: "status", data: { state: "connected", title: "bob@web1" } });
    g.net.last.serverJson({ pane: 0, type: "output", data: "aGkK" });
    g.net.last.serverJson({ pane: 1, type: "exit", data: 2 });
    g.net.last.serverJson({ pane: null, type: "error", data: "inventory changed" });
    g.net.last.serverJson({ pane: 3, type: "output", data: "aGkK" });
    g.net.last.serverJson({ pane: 0, type: "output", data: "!!" });
    g.net.last.serverBinary(new Uint8Array([1]));
    assert.deepEqual(g.calls, [
      ["status", 1, "connected", "bob@web1"],
      ["output", 0, "hi\n"],
      ["exit", 1, 2],
      ["error", null, "inventory changed"],
      ["warn", "grid socket: message for pane 3, which this page does not show"],
      ["warn", "grid socket: output.data is not valid base64"],
      ["warn", "grid socket: unexpected binary frame"],
    ]);
  });

  it("turns broadcast typing on and off, and on again after a reconnect", () => {
    const g = gridSetup();
    g.client.start();
    g.net.last.serverOpen();
    g.client.setBroadcast(true);
    g.net.last.serverJson({ type: "broadcast", data: true });
    g.net.last.serverJson({ type: "broadcast", data: "yes" });
    assert.deepEqual(g.net.last.sentJson, [{ type: "broadcast", data: true }]);
    assert.deepEqual(g.calls, [
      ["broadcast", true],
      ["warn", "grid socket: broadcast.data is not true or false"],
    ]);
    g.net.last.serverClose(1006);
    g.timers.advance(500);
    g.net.last.serverOpen();
    assert.deepEqual(g.net.last.sentJson, [{ type: "broadcast", data: true }]);
    g.client.setBroadcast(false);
    assert.deepEqual(g.net.last.sentJson, [
      { type: "broadcast", data: true },
      { type: "broadcast", data: false },
    ]);
  });

  it("reconnects after a blip and sends every pane's size again", () => {
    const g = gridSetup();
    g.client.resize(0, 80, 24);
    g.client.resize(2, 90, 20);
    g.client.start();
    g.net.last.serverOpen();
    g.net.last.serverClose(1006);
    assert.equal(g.state()?.kind, "waiting");
    g.timers.advance(500);
    g.net.last.serverOpen();
    assert.deepEqual(g.net.last.sentJson, [
      { pane: 0, type: "resize", data: { cols: 80, rows: 24 } },
      { pane: 2, type: "resize", data: { cols: 90, rows: 20 } },
    ]);
  });

  it("stays closed after the idle timeout and after a normal close", () => {
    for (const reason of ["idle", "grid deleted"]) {
      const g = gridSetup();
      g.client.start();
      g.net.last.serverOpen();
      g.net.last.serverClose(1000, reason);
      assert.deepEqual(g.state(), { kind: "closed", reason: reason === "idle" ? "idle" : "ended", code: 1000 });
      g.timers.advance(60_000);
      assert.equal(g.net.sockets.length, 1);
      g.client.reconnectNow();
      assert.equal(g.net.sockets.length, 2);
    }
  });

  it("does not reconnect when logged out or refused", () => {
    for (const code of [4401, 4403, 4404]) {
      const g = gridSetup();
      g.client.start();
      g.net.last.serverClose(code);
      assert.equal(g.state()?.kind, "closed");
      g.timers.advance(60_000);
      assert.equal(g.net.sockets.length, 1);
    }
  });
});

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AsciicastError, DEFAULT_CAST_LIMITS, parseAsciicast } from "../src/asciicast";
import { CastFetchError, fetchCast } from "../src/cast-fetch";

const HEADER = '{"version":2,"width":80,"height":24,"timestamp":1700000000,"title":"<img src=x onerror=alert(1)>","env":{"TERM":"xterm-256color"}}';

function cast(...events: string[]): string {
  return [HEADER, ...events].join("\n") + "\n";
}

function failsAt(text: string, line: number, pattern: RegExp, limits = DEFAULT_CAST_LIMITS): void {
  assert.throws(
    () => parseAsciicast(text, limits),
    (e: unknown) => {
      assert.ok(e instanceof AsciicastError, `expected AsciicastError, got ${String(e)}`);
      assert.equal(e.line, line, e.message);
      assert.match(e.message, pattern);
      return true;
    },
  );
}

describe("asciicast v2 parser", () => {
  it("reads the header and every kind of event", () => {
    const c = parseAsciicast(cast('[0.1,"o","$ "]', '[0.5,"i","l"]', '[0.5,"r","100x30"]', '[1.25,"m","build done"]', '[2,"o","\\u001b[1mhi\\r\\n"]'));
    assert.deepEqual(c.header, { width: 80, height: 24, title: "<img src=x onerror=alert(1)>", idleTimeLimit: null, timestamp: 1700000000 });
    assert.deepEqual(c.events, [
      { time: 0.1, code: "o", data: "$ " },
      { time: 0.5, code: "i", data: "l" },
      { time: 0.5, code: "r", data: "100x30", cols: 100, rows: 30 },
      { time: 1.25, code: "m", data: "build done" },
      { time: 2, code: "o", data: "\x1b[1mhi\r\n" },
    ]);
  });

  it("accepts CRLF line ends, a BOM, blank lines and a header without events", () => {
    const c = parseAsciicast("\ufeff" + HEADER + "\r\n\r\n" + '[1,"o","x"]\r\n\n');
    assert.equal(c.events.length, 1);
    assert.equal(parseAsciicast(HEADER).events.length, 0);
    assert.equal(parseAsciicast('{"version":2,"width":1,"height":1,"idle_time_limit":2.5}').header.idleTimeLimit, 2.5);
  });

  it("refuses a bad header with the reason", () => {
    failsAt("", 0, /empty/);
    failsAt("asciinema\n", 1, /header is not JSON/);
    failsAt("[2,80,24]\n", 1, /not a JSON object/);
    failsAt('{"version":1,"width":80,"height":24}', 1, /version is 1; only asciicast version 2/);
    failsAt('{"width":80,"height":24}', 1, /version is missing/);
    failsAt('{"version":2,"height":24}', 1, /width must be an integer from 1 to 1000/);
    failsAt('{"version":2,"width":80,"height":0}', 1, /height/);
    failsAt('{"version":2,"width":1001,"height":24}', 1, /width/);
    failsAt('{"version":2,"width":80.5,"height":24}', 1, /width/);
    failsAt('{"version":2,"width":80,"height":24,"idle_time_limit":-1}', 1, /idle_time_limit/);
  });

  it("refuses a bad event with its line number", () => {
    failsAt(cast('[0.1,"o","ok"]', "nope"), 3, /event is not JSON/);
    failsAt(cast('{"time":1}'), 2, /JSON array \[time, code, data\]/);
    failsAt(cast('[1,"o"]'), 2, /JSON array/);
    failsAt(cast('[1,"o","x","extra"]'), 2, /JSON array/);
    failsAt(cast('["1","o","x"]'), 2, /time must be a number/);
    failsAt(cast('[-0.5,"o","x"]'), 2, /time must be a number/);
    failsAt(cast('[2,"o","x"]', '[1,"o","y"]'), 3, /time 1 is before the previous event's 2/);
    failsAt(cast('[1,"x","y"]'), 2, /code must be "o", "i", "r" or "m"/);
    failsAt(cast('[1,"o",42]'), 2, /data must be a string/);
    failsAt(cast('[1,"r","80x"]'), 2, /resize must be COLSxROWS/);
    failsAt(cast('[1,"r","0x24"]'), 2, /resize/);
    failsAt(cast('[1,"r","5000x24"]'), 2, /resize/);
    failsAt(cast('[1,"r"," 80x24"]'), 2, /resize/);
  });

  it("caps the size and the number of events", () => {
    const limits = { maxBytes: 200, maxEvents: 2, maxDimension: 1000 };
    failsAt(cast('[1,"o","' + "x".repeat(300) + '"]'), 0, /larger than 200 bytes/, limits);
    failsAt(cast('[1,"o","a"]', '[2,"o","b"]', '[3,"o","c"]'), 4, /more than 2 events/, limits);
    assert.equal(parseAsciicast(cast('[1,"o","a"]', '[2,"o","b"]'), limits).events.length, 2);
    assert.equal(DEFAULT_CAST_LIMITS.maxBytes, 100 * 1024 * 1024);
  });
});

function streamOf(chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      for (const c of chunks) controller.enqueue(c);
      controller.close();
    },
  });
}

function respond(body: ReadableStream<Uint8Array> | null, init: { status?: number; length?: number } = {}) {
  const headers = new Headers();
  if (init.length !== undefined) headers.set("content-length", String(init.length));
  const status = init.status ?? 200;
  return async () => ({ ok: status >= 200 && status < 300, status, headers, body });
}

describe("downloading a recording", () => {
  it("decodes UTF-8 split across chunks", async () => {
    const euro = new TextEncoder().encode("a€b");
    const text = await fetchCast("/c", respond(streamOf([euro.subarray(0, 2), euro.subarray(2)])), 100);
    assert.equal(text, "a€b");
  });

  it("asks for the file with the page's cookies", async () => {
    let seen: unknown;
    await fetchCast("/api/v1/recordings/r/cast", async (url, init) => {
      seen = { url, init };
      return respond(null)();
    }, 100);
    assert.deepEqual(seen, {
      url: "/api/v1/recordings/r/cast",
      init: { credentials: "same-origin", headers: { Accept: "application/x-asciicast, text/plain" } },
    });
  });

  it("refuses HTTP errors, network errors and files over the cap", async () => {
    await assert.rejects(fetchCast("/c", respond(null, { status: 404 }), 100), (e: unknown) => e instanceof CastFetchError && /HTTP 404/.test(e.message));
    await assert.rejects(fetchCast("/c", async () => { throw new TypeError("offline"); }, 100), /network error/);
    await assert.rejects(fetchCast("/c", respond(streamOf([]), { length: 101 }), 100), /101 bytes, more than the 100/);
    // A server that does not say how long the body is gets cut off while reading.
    const chunk = new Uint8Array(40).fill(0x61);
    await assert.rejects(fetchCast("/c", respond(streamOf([chunk, chunk, chunk])), 100), /more than the 100 bytes/);
    assert.equal((await fetchCast("/c", respond(streamOf([chunk, chunk])), 100)).length, 80);
  });
});

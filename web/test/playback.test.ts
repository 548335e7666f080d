import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseAsciicast } from "../src/asciicast";
import { formatTime, Player, Timeline } from "../src/playback";

function timeline(idle?: number): Timeline {
  const header = { version: 2, width: 80, height: 24, ...(idle ? { idle_time_limit: idle } : {}) };
  const lines = [
    JSON.stringify(header),
    '[0,"o","a"]',
    '[1,"o","b"]',
    '[1,"i","typed"]',
    '[2,"r","100x30"]',
    '[2,"o","c"]',
    '[3,"m","chapter"]',
    '[10,"o","d"]',
  ];
  return new Timeline(parseAsciicast(lines.join("\n")));
}

describe("timeline", () => {
  it("joins output between resizes and skips input", () => {
    const t = timeline();
    assert.equal(t.duration, 10);
    assert.deepEqual(t.moveTo(1.5), [{ kind: "output", data: "ab" }]);
    assert.deepEqual(t.moveTo(2), [{ kind: "resize", cols: 100, rows: 30 }, { kind: "output", data: "c" }]);
    assert.deepEqual(t.moveTo(5), []);
    assert.deepEqual(t.moveTo(99), [{ kind: "output", data: "d" }]);
    assert.equal(t.position, 10);
    assert.deepEqual(t.markers, [{ time: 3, label: "chapter" }]);
  });

  it("starts over from a reset when moving back", () => {
    const t = timeline();
    t.moveTo(10);
    assert.deepEqual(t.moveTo(1), [
      { kind: "reset", cols: 80, rows: 24 },
      { kind: "output", data: "ab" },
    ]);
    assert.deepEqual(t.moveTo(-3), [{ kind: "reset", cols: 80, rows: 24 }, { kind: "output", data: "a" }]);
  });

  it("shortens pauses longer than idle_time_limit", () => {
    const t = timeline(2);
    assert.equal(t.duration, 5);
    t.moveTo(4.9);
    assert.deepEqual(t.moveTo(5), [{ kind: "output", data: "d" }]);
  });
});

describe("player", () => {
  it("plays at the chosen speed, pauses and resumes", () => {
    const p = new Player(timeline());
    assert.deepEqual(p.play(1000), []);
    assert.deepEqual(p.tick(1000), [{ kind: "output", data: "a" }]);
    assert.deepEqual(p.tick(2000), [{ kind: "output", data: "b" }]);
    p.setSpeed(2, 2000);
    assert.equal(p.position(2500), 2);
    p.pause(2500);
    assert.equal(p.position(9000), 2);
    assert.deepEqual(p.tick(9000), []);
    p.play(9000);
    assert.equal(p.position(9500), 3);
  });

  it("stops at the end and plays again from the start", () => {
    const p = new Player(timeline());
    p.play(0);
    p.setSpeed(8, 0);
    p.tick(2000);
    assert.equal(p.isPlaying, false);
    assert.equal(p.ended, true);
    assert.equal(p.position(5000), 10);
    assert.deepEqual(p.play(5000), [{ kind: "reset", cols: 80, rows: 24 }, { kind: "output", data: "a" }]);
    assert.equal(p.isPlaying, true);
  });

  it("seeks while playing and keeps playing from there", () => {
    const p = new Player(timeline());
    p.play(0);
    p.tick(0);
    assert.deepEqual(p.seek(3, 100), [{ kind: "output", data: "b" }, { kind: "resize", cols: 100, rows: 30 }, { kind: "output", data: "c" }]);
    assert.equal(p.position(1100), 4);
    assert.equal(p.isPlaying, true);
  });

  it("refuses absurd speeds", () => {
    const p = new Player(timeline());
    assert.throws(() => p.setSpeed(0, 0), /speed 0/);
    assert.throws(() => p.setSpeed(Number.NaN, 0), /speed NaN/);
    assert.throws(() => p.setSpeed(1000, 0), /speed 1000/);
  });

  it("formats times", () => {
    assert.equal(formatTime(0), "0:00");
    assert.equal(formatTime(65.9), "1:05");
    assert.equal(formatTime(3725), "1:02:05");
    assert.equal(formatTime(Number.NaN), "0:00");
  });
});

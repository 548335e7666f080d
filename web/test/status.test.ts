import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { safeLinkTarget } from "../src/links";
import { describeConnection, describeTerminal, loginHref, memberLabel } from "../src/status";
import type { TerminalStatus } from "../src/terminal-client";

const base: TerminalStatus = {
  connection: { kind: "idle" },
  title: "t",
  you: null,
  role: null,
  ready: false,
  exitCode: null,
  serverMessage: null,
};

describe("status bar wording", () => {
  it("says who we are once connected", () => {
    const v = describeTerminal({ ...base, connection: { kind: "open" }, you: "bob", role: "viewer", ready: true }, 0);
    assert.deepEqual(v, { state: "connected", text: "Connected as bob (viewer)", action: null, actionLabel: "" });
  });

  it("is not connected until the shell is attached, even with a name from an earlier socket", () => {
    for (const you of [null, "bob"]) {
      const v = describeTerminal({ ...base, connection: { kind: "open" }, you, role: you ? "peer" : null }, 0);
      assert.deepEqual(v, { state: "connecting", text: "Starting the shell…", action: null, actionLabel: "" });
    }
  });

  it("counts down to the next attempt and offers to skip the wait", () => {
    const v = describeTerminal({ ...base, connection: { kind: "waiting", attempt: 3, delayMs: 4000, retryAt: 10_000, code: 1006 } }, 6_500);
    assert.equal(v.state, "reconnecting");
    assert.equal(v.text, "Connection lost; reconnecting in 4s…");
    assert.equal(v.action, "reconnect");
    const late = describeConnection({ kind: "waiting", attempt: 3, delayMs: 4000, retryAt: 10_000, code: 1006 }, 12_000);
    assert.equal(late.text, "Connection lost; reconnecting in 1s…");
  });

  it("tells first connection from reconnection", () => {
    assert.equal(describeConnection({ kind: "connecting", attempt: 0 }, 0).text, "Connecting…");
    assert.equal(describeConnection({ kind: "connecting", attempt: 2 }, 0).state, "reconnecting");
  });

  it("describes each final close", () => {
    const closed = (reason: "ended" | "unauthenticated" | "forbidden" | "not-found" | "idle", code: number) =>
      ({ kind: "closed", reason, code }) as const;
    assert.deepEqual(describeTerminal({ ...base, connection: closed("ended", 1000), exitCode: 0 }, 0), {
      state: "ended",
      text: "Session ended (exit code 0).",
      action: "reconnect",
      actionLabel: "Reconnect",
    });
    assert.equal(describeTerminal({ ...base, connection: closed("ended", 1000) }, 0).text, "Session ended.");
    assert.equal(describeTerminal({ ...base, connection: closed("unauthenticated", 4401) }, 0).action, "login");
    assert.equal(describeTerminal({ ...base, connection: closed("forbidden", 4403), serverMessage: "not yours" }, 0).text, "Access denied. not yours");
    assert.equal(describeTerminal({ ...base, connection: closed("not-found", 4404) }, 0).action, null);
    assert.equal(describeConnection(closed("not-found", 4404), 0, null, "grid").text, "No such grid.");
    assert.equal(describeConnection(closed("idle", 1000), 0).state, "idle");
  });

  it("labels members and the login link", () => {
    assert.equal(memberLabel({ username: "alice", role: "owner" }, "alice"), "alice (you) — owner");
    assert.equal(memberLabel({ username: "<b>bob</b>", role: "viewer" }, "alice"), "<b>bob</b> — viewer");
    assert.equal(loginHref("/w/abc def"), "/login?next=%2Fw%2Fabc%20def");
  });
});

describe("terminal links", () => {
  it("opens only absolute http(s) links without credentials", () => {
    assert.equal(safeLinkTarget("https://example.test/a?b#c"), "https://example.test/a?b#c");
    assert.equal(safeLinkTarget("http://example.test"), "http://example.test/");
    for (const bad of [
      "javascript:alert(1)",
      "JaVaScRiPt:alert(1)",
      "data:text/html,<script>alert(1)</script>",
      "file:///etc/passwd",
      "vbscript:x",
      "/relative",
      "ssh://host",
      "https://bank.test@evil.test/",
      "",
    ]) {
      assert.equal(safeLinkTarget(bad), null, bad);
    }
  });
});

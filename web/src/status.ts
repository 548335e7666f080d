// What the status bar says for a connection state: words, a `data-state` for styling and tests,
// and which action (if any) the user is offered. Pure, so the wording is tested without a DOM.

import type { ConnectionState } from "./connection";
import type { Member } from "./protocol";
import type { TerminalStatus } from "./terminal-client";

export type StatusAction = "reconnect" | "login" | null;

export interface StatusView {
  /** The `data-state` attribute of the status element. */
  state: "connecting" | "connected" | "reconnecting" | "ended" | "logged-out" | "forbidden" | "not-found" | "idle";
  text: string;
  action: StatusAction;
  /** The label of the action's button or link. */
  actionLabel: string;
}

function secondsLeft(retryAt: number, now: number): number {
  return Math.max(1, Math.ceil((retryAt - now) / 1000));
}

function withMessage(text: string, message: string | null): string {
  return message ? `${text} ${message}` : text;
}

/** Describes a bare connection (the grid's socket, or the terminal's before `hello`). */
export function describeConnection(
  state: ConnectionState,
  now: number,
  message: string | null = null,
  what: "workspace" | "grid" = "workspace",
): StatusView {
  switch (state.kind) {
    case "idle":
      return { state: "connecting", text: "Connecting…", action: null, actionLabel: "" };
    case "connecting":
      return state.attempt === 0
        ? { state: "connecting", text: "Connecting…", action: null, actionLabel: "" }
        : { state: "reconnecting", text: "Reconnecting…", action: null, actionLabel: "" };
    case "open":
      return { state: "connected", text: "Connected", action: null, actionLabel: "" };
    case "waiting":
      return {
        state: "reconnecting",
        text: `Connection lost; reconnecting in ${secondsLeft(state.retryAt, now)}s…`,
        action: "reconnect",
        actionLabel: "Reconnect now",
      };
    case "closed":
      switch (state.reason) {
        case "ended":
          return { state: "ended", text: withMessage("Session ended.", message), action: "reconnect", actionLabel: "Reconnect" };
        case "idle":
          return { state: "idle", text: "Closed after being idle.", action: "reconnect", actionLabel: "Reconnect" };
        case "unauthenticated":
          return { state: "logged-out", text: "Logged out.", action: "login", actionLabel: "Log in" };
        case "forbidden":
          return { state: "forbidden", text: withMessage("Access denied.", message), action: null, actionLabel: "" };
        case "not-found":
          return { state: "not-found", text: withMessage(`No such ${what}.`, message), action: null, actionLabel: "" };
      }
  }
}

export function describeTerminal(status: TerminalStatus, now: number): StatusView {
  const c = status.connection;
  if (c.kind === "open" && status.ready && status.you !== null && status.role !== null) {
    return { state: "connected", text: `Connected as ${status.you} (${status.role})`, action: null, actionLabel: "" };
  }
  // The socket is open but the server has not attached the shell yet (it may be starting the
  // workspace): not "connected" until input can reach the shell.
  if (c.kind === "open") {
    return { state: "connecting", text: "Starting the shell…", action: null, actionLabel: "" };
  }
  if (c.kind === "closed" && c.reason === "ended" && status.exitCode !== null) {
    return {
      state: "ended",
      text: withMessage(`Session ended (exit code ${status.exitCode}).`, status.serverMessage),
      action: "reconnect",
      actionLabel: "Reconnect",
    };
  }
  return describeConnection(c, now, status.serverMessage);
}

/** One line of the members list. */
export function memberLabel(member: Member, you: string | null): string {
  const me = member.username === you ? " (you)" : "";
  return `${member.username}${me} — ${member.role}`;
}

/** The login link, bringing the user back to this page afterwards. */
export function loginHref(pathname: string): string {
  return `/login?next=${encodeURIComponent(pathname)}`;
}

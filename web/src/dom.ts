// The few DOM pieces the pages share. Every string that came from a server, a terminal or a
// recording goes into the page through textContent, never as HTML.

import type { Member } from "./protocol";
import { loginHref, memberLabel, type StatusView } from "./status";

export function requireElement(id: string): HTMLElement {
  const el = document.getElementById(id);
  if (el === null) throw new Error(`the page has no element #${id}`);
  return el;
}

export function element<K extends keyof HTMLElementTagNameMap>(tag: K, className: string, text = ""): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  el.className = className;
  if (text !== "") el.textContent = text;
  return el;
}

/** Fills `#berth-status` once and updates it in place; see docs/terminal-protocol.md. */
export class StatusBar {
  private readonly title: HTMLSpanElement;
  private readonly text: HTMLSpanElement;
  private readonly viewOnly: HTMLSpanElement;
  private readonly button: HTMLButtonElement;
  private readonly login: HTMLAnchorElement;

  constructor(
    private readonly root: HTMLElement,
    onReconnect: () => void,
  ) {
    root.setAttribute("role", "status");
    root.setAttribute("aria-live", "polite");
    this.title = element("span", "berth-status-title");
    this.text = element("span", "berth-status-text");
    this.viewOnly = element("span", "berth-view-only", "view only");
    this.viewOnly.hidden = true;
    this.button = element("button", "berth-status-action");
    this.button.type = "button";
    this.button.hidden = true;
    this.button.addEventListener("click", onReconnect);
    this.login = element("a", "berth-status-login", "Log in");
    this.login.href = loginHref(location.pathname);
    this.login.hidden = true;
    root.replaceChildren(this.title, this.text, this.viewOnly, this.button, this.login);
  }

  render(view: StatusView, title: string, viewOnly: boolean): void {
    this.root.dataset.state = view.state;
    this.title.textContent = title;
    this.title.hidden = title === "";
    this.text.textContent = view.text;
    this.viewOnly.hidden = !viewOnly;
    this.button.hidden = view.action !== "reconnect";
    if (view.action === "reconnect") this.button.textContent = view.actionLabel;
    this.login.hidden = view.action !== "login";
  }

  /** For errors that stop the page before any connection (a broken page, an unreadable file). */
  fail(message: string): void {
    this.root.dataset.state = "error";
    this.text.textContent = message;
    this.button.hidden = true;
    this.login.hidden = true;
  }
}

export function renderMembers(list: HTMLElement, members: readonly Member[], you: string | null): void {
  const items = members.map((m) => {
    const li = element("li", "berth-member", memberLabel(m, you));
    li.dataset.username = m.username;
    li.dataset.role = m.role;
    if (m.username === you) li.dataset.you = "";
    return li;
  });
  list.replaceChildren(...items);
}

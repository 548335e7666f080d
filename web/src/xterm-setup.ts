// One place that creates xterm terminals, with the settings that keep hostile output harmless:
// links open only on click after a prompt, clipboard writes (OSC 52) are swallowed, and no
// proposed (unstable) API is enabled.

import { Terminal, type ITerminalInitOnlyOptions, type ITerminalOptions } from "@xterm/xterm";
import { safeLinkTarget } from "./links";

const OSC_CLIPBOARD = 52;

function openLink(_event: MouseEvent, target: string): void {
  const href = safeLinkTarget(target);
  if (href === null) return;
  // confirm() shows plain text: the real target, whatever the link's text claimed.
  if (!window.confirm(`Open this link from the terminal in a new tab?\n\n${href}`)) return;
  window.open(href, "_blank", "noopener,noreferrer");
}

export function createTerminal(options: ITerminalOptions & ITerminalInitOnlyOptions = {}): Terminal {
  const term = new Terminal({
    allowProposedApi: false,
    cursorBlink: true,
    scrollback: 5000,
    fontSize: 14,
    fontFamily: 'ui-monospace, "DejaVu Sans Mono", "Liberation Mono", Menlo, Consolas, monospace',
    linkHandler: { activate: openLink, allowNonHttpProtocols: false },
    ...options,
  });
  // xterm itself has no OSC 52 support today; claiming the sequence keeps it that way even if an
  // addon that implements it is ever loaded, so a program cannot write the user's clipboard.
  term.parser.registerOscHandler(OSC_CLIPBOARD, () => true);
  return term;
}

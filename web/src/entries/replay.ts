// /assets/replay.js: the recording page (/recordings/{id}). Downloads an asciicast v2 file and
// plays it into a read-only xterm. The file's content reaches the page only through xterm (as
// terminal data) and textContent (title, markers, errors).

import type { Terminal } from "@xterm/xterm";
import { DEFAULT_CAST_LIMITS, parseAsciicast } from "../asciicast";
import { fetchCast } from "../cast-fetch";
import { element, requireElement } from "../dom";
import { formatTime, Player, SPEEDS, Timeline, type Step } from "../playback";
import { createTerminal } from "../xterm-setup";

function apply(term: Terminal, steps: readonly Step[]): void {
  for (const step of steps) {
    switch (step.kind) {
      case "reset":
        term.reset();
        term.resize(step.cols, step.rows);
        break;
      case "resize":
        term.resize(step.cols, step.rows);
        break;
      case "output":
        term.write(step.data);
        break;
    }
  }
}

async function main(): Promise<void> {
  const root = requireElement("berth-replay");
  const title = element("div", "berth-replay-title");
  title.hidden = true;
  const screen = element("div", "berth-replay-screen");
  const controls = element("div", "berth-replay-controls");
  const play = element("button", "berth-replay-play", "Play");
  play.type = "button";
  play.disabled = true;
  const seek = element("input", "berth-replay-seek");
  seek.type = "range";
  seek.min = "0";
  seek.step = "any";
  seek.value = "0";
  seek.disabled = true;
  seek.setAttribute("aria-label", "Position");
  const time = element("span", "berth-replay-time", "0:00 / 0:00");
  const speed = element("select", "berth-replay-speed");
  speed.setAttribute("aria-label", "Speed");
  for (const s of SPEEDS) {
    const option = element("option", "", `${s}×`);
    option.value = String(s);
    option.selected = s === 1;
    speed.append(option);
  }
  controls.append(play, seek, time, speed);
  const markers = element("ol", "berth-replay-markers");
  const message = element("div", "berth-replay-message", "Loading the recording…");
  message.setAttribute("role", "status");
  root.replaceChildren(title, screen, controls, markers, message);
  root.dataset.state = "loading";

  const fail = (text: string) => {
    root.dataset.state = "error";
    message.textContent = text;
  };

  const castUrl = root.dataset.castUrl ?? "";
  if (castUrl === "") {
    fail("the page gives no recording URL (data-cast-url is empty)");
    return;
  }
  let timeline: Timeline;
  let cols: number;
  let rows: number;
  try {
    const text = await fetchCast(castUrl, (url, init) => fetch(url, init), DEFAULT_CAST_LIMITS.maxBytes);
    const cast = parseAsciicast(text);
    timeline = new Timeline(cast);
    cols = cast.header.width;
    rows = cast.header.height;
    if (cast.header.title !== null) {
      title.textContent = cast.header.title;
      title.hidden = false;
    }
  } catch (e) {
    fail(e instanceof Error ? e.message : String(e));
    return;
  }

  const term = createTerminal({ cols, rows, disableStdin: true, cursorBlink: false, scrollback: 1000 });
  term.open(screen);
  const player = new Player(timeline);
  seek.max = String(timeline.duration);
  seek.disabled = false;
  play.disabled = false;
  message.textContent = "";
  for (const m of timeline.markers) {
    const button = element("button", "berth-replay-marker", `${formatTime(m.time)} ${m.label}`);
    button.type = "button";
    button.addEventListener("click", () => {
      apply(term, player.seek(m.time, performance.now()));
      refresh();
    });
    const li = element("li", "");
    li.append(button);
    markers.append(li);
  }

  let frame = 0;
  const refresh = () => {
    const pos = player.position(performance.now());
    seek.value = String(pos);
    time.textContent = `${formatTime(pos)} / ${formatTime(timeline.duration)}`;
    play.textContent = player.isPlaying ? "Pause" : player.ended ? "Replay" : "Play";
    root.dataset.state = player.isPlaying ? "playing" : player.ended ? "ended" : pos > 0 ? "paused" : "ready";
  };
  const loop = () => {
    frame = 0;
    apply(term, player.tick(performance.now()));
    refresh();
    if (player.isPlaying) frame = requestAnimationFrame(loop);
  };
  const startLoop = () => {
    if (frame === 0 && player.isPlaying) frame = requestAnimationFrame(loop);
  };

  play.addEventListener("click", () => {
    const now = performance.now();
    if (player.isPlaying) player.pause(now);
    else apply(term, player.play(now));
    refresh();
    startLoop();
  });
  seek.addEventListener("input", () => {
    apply(term, player.seek(Number(seek.value), performance.now()));
    refresh();
  });
  speed.addEventListener("change", () => {
    player.setSpeed(Number(speed.value), performance.now());
  });
  apply(term, player.seek(0, performance.now()));
  refresh();
}

void main();

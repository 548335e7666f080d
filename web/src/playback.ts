// Playing a recording: a `Timeline` turns "show the terminal as it was at t seconds" into steps
// for a terminal (reset, write, resize), and a `Player` maps wall-clock time to recording time
// with play, pause, speed and seek. Both are pure: the page feeds them `performance.now()`.

import type { Cast } from "./asciicast";

export type Step =
  | { kind: "reset"; cols: number; rows: number }
  | { kind: "output"; data: string }
  | { kind: "resize"; cols: number; rows: number };

type Frame = { time: number; kind: "output"; data: string } | { time: number; kind: "resize"; cols: number; rows: number };

export interface Marker {
  time: number;
  label: string;
}

export class Timeline {
  /** Length of the playback in seconds, after long pauses were shortened. */
  readonly duration: number;
  readonly markers: readonly Marker[];
  private readonly frames: Frame[] = [];
  private readonly width: number;
  private readonly height: number;
  private cursor = 0;
  private at = 0;

  constructor(cast: Cast) {
    this.width = cast.header.width;
    this.height = cast.header.height;
    const limit = cast.header.idleTimeLimit ?? Infinity;
    const markers: Marker[] = [];
    let last = 0;
    let t = 0;
    for (const e of cast.events) {
      t += Math.min(e.time - last, limit);
      last = e.time;
      // Input is echoed in the output already; markers are listed, not drawn.
      if (e.code === "o") this.frames.push({ time: t, kind: "output", data: e.data });
      else if (e.code === "r") this.frames.push({ time: t, kind: "resize", cols: e.cols, rows: e.rows });
      else if (e.code === "m") markers.push({ time: t, label: e.data.slice(0, 200) });
    }
    this.duration = t;
    this.markers = markers;
  }

  get position(): number {
    return this.at;
  }

  /**
   * The steps that take a terminal showing the recording at `position` to showing it at `t`.
   * Going back starts over from a reset, since a terminal cannot be un-written.
   */
  moveTo(t: number): Step[] {
    const target = Math.min(Math.max(Number.isFinite(t) ? t : 0, 0), this.duration);
    const steps: Step[] = [];
    if (target < this.at) {
      steps.push({ kind: "reset", cols: this.width, rows: this.height });
      this.cursor = 0;
    }
    let pending: string[] = [];
    const flush = () => {
      if (pending.length > 0) steps.push({ kind: "output", data: pending.join("") });
      pending = [];
    };
    while (this.cursor < this.frames.length) {
      const f = this.frames[this.cursor];
      if (f === undefined || f.time > target) break;
      if (f.kind === "output") {
        pending.push(f.data);
      } else {
        flush();
        steps.push({ kind: "resize", cols: f.cols, rows: f.rows });
      }
      this.cursor += 1;
    }
    flush();
    this.at = target;
    return steps;
  }
}

export const SPEEDS: readonly number[] = [0.5, 1, 2, 4, 8];

export class Player {
  private playing = false;
  private speedFactor = 1;
  /** Recording time and wall time (ms) at the last play, seek or speed change. */
  private anchorPos = 0;
  private anchorWall = 0;

  constructor(readonly timeline: Timeline) {}

  get isPlaying(): boolean {
    return this.playing;
  }

  get speed(): number {
    return this.speedFactor;
  }

  get ended(): boolean {
    return !this.playing && this.timeline.position >= this.timeline.duration;
  }

  position(now: number): number {
    if (!this.playing) return this.anchorPos;
    return Math.min(this.timeline.duration, this.anchorPos + ((now - this.anchorWall) / 1000) * this.speedFactor);
  }

  /** Starts playing; at the end, starts over. */
  play(now: number): Step[] {
    if (this.playing) return [];
    const steps = this.ended ? this.seek(0, now) : [];
    this.playing = true;
    this.anchorWall = now;
    return steps;
  }

  pause(now: number): void {
    if (!this.playing) return;
    this.anchorPos = this.position(now);
    this.playing = false;
  }

  setSpeed(speed: number, now: number): void {
    if (!(Number.isFinite(speed) && speed > 0 && speed <= 64)) throw new Error(`speed ${speed} is not between 0 and 64`);
    this.anchorPos = this.position(now);
    this.anchorWall = now;
    this.speedFactor = speed;
  }

  seek(t: number, now: number): Step[] {
    const steps = this.timeline.moveTo(t);
    this.anchorPos = this.timeline.position;
    this.anchorWall = now;
    return steps;
  }

  /** The steps due by `now`; stops playing at the end. */
  tick(now: number): Step[] {
    if (!this.playing) return [];
    const pos = this.position(now);
    const steps = this.timeline.moveTo(pos);
    if (pos >= this.timeline.duration) {
      this.anchorPos = pos;
      this.playing = false;
    }
    return steps;
  }
}

/** `m:ss` or `h:mm:ss` for the time display. */
export function formatTime(seconds: number): string {
  const s = Math.max(0, Math.floor(Number.isFinite(seconds) ? seconds : 0));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

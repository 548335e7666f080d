// asciicast v2 (https://docs.asciinema.org/manual/asciicast/v2/): a JSON header line, then one
// JSON array per line: [time, code, data]. Recordings hold whatever ran in the terminal, so the
// parser treats the file as hostile: sizes and counts are capped, every line is checked, and a
// bad line fails the whole file with its line number instead of playing half a recording.

export interface CastHeader {
  width: number;
  height: number;
  title: string | null;
  /** Pauses longer than this (seconds) are shortened to it on playback. */
  idleTimeLimit: number | null;
  /** Unix time of the start of the recording. */
  timestamp: number | null;
}

export type CastEvent =
  | { time: number; code: "o" | "i" | "m"; data: string }
  | { time: number; code: "r"; data: string; cols: number; rows: number };

export interface Cast {
  header: CastHeader;
  events: CastEvent[];
}

export class AsciicastError extends Error {
  constructor(
    readonly line: number,
    detail: string,
  ) {
    super(line > 0 ? `recording line ${line}: ${detail}` : `recording: ${detail}`);
    this.name = "AsciicastError";
  }
}

export interface CastLimits {
  /** Largest file, in bytes (checked on characters here, on bytes while downloading). */
  maxBytes: number;
  maxEvents: number;
  /** Largest terminal, in columns and in rows. */
  maxDimension: number;
}

export const DEFAULT_CAST_LIMITS: CastLimits = {
  maxBytes: 100 * 1024 * 1024,
  maxEvents: 1_000_000,
  maxDimension: 1000,
};

const CODES: readonly string[] = ["o", "i", "r", "m"];
const RESIZE = /^(\d{1,5})x(\d{1,5})$/;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function dimension(v: unknown, name: string, limits: CastLimits): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > limits.maxDimension) {
    throw new AsciicastError(1, `header ${name} must be an integer from 1 to ${limits.maxDimension}`);
  }
  return v;
}

function parseHeader(line: string, limits: CastLimits): CastHeader {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    throw new AsciicastError(1, "the header is not JSON");
  }
  if (!isRecord(v)) throw new AsciicastError(1, "the header is not a JSON object");
  if (v.version !== 2) {
    throw new AsciicastError(1, `version is ${JSON.stringify(v.version) ?? "missing"}; only asciicast version 2 is supported`);
  }
  const width = dimension(v.width, "width", limits);
  const height = dimension(v.height, "height", limits);
  const title = typeof v.title === "string" ? v.title.slice(0, 512) : null;
  let idleTimeLimit: number | null = null;
  if (v.idle_time_limit !== undefined && v.idle_time_limit !== null) {
    if (typeof v.idle_time_limit !== "number" || !(v.idle_time_limit > 0) || !Number.isFinite(v.idle_time_limit)) {
      throw new AsciicastError(1, "header idle_time_limit must be a positive number");
    }
    idleTimeLimit = v.idle_time_limit;
  }
  const timestamp = typeof v.timestamp === "number" && Number.isFinite(v.timestamp) ? v.timestamp : null;
  return { width, height, title, idleTimeLimit, timestamp };
}

function parseEvent(line: string, lineNo: number, previous: number, limits: CastLimits): CastEvent {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    throw new AsciicastError(lineNo, "the event is not JSON");
  }
  if (!Array.isArray(v) || v.length !== 3) throw new AsciicastError(lineNo, "an event must be a JSON array [time, code, data]");
  const [time, code, data] = v as [unknown, unknown, unknown];
  if (typeof time !== "number" || !Number.isFinite(time) || time < 0) {
    throw new AsciicastError(lineNo, "the event time must be a number of seconds, 0 or more");
  }
  if (time < previous) throw new AsciicastError(lineNo, `the event time ${time} is before the previous event's ${previous}`);
  if (typeof code !== "string" || !CODES.includes(code)) {
    throw new AsciicastError(lineNo, `the event code must be "o", "i", "r" or "m", not ${JSON.stringify(code).slice(0, 20)}`);
  }
  if (typeof data !== "string") throw new AsciicastError(lineNo, "the event data must be a string");
  if (code === "r") {
    const m = RESIZE.exec(data);
    const cols = m ? Number(m[1]) : 0;
    const rows = m ? Number(m[2]) : 0;
    if (cols < 1 || rows < 1 || cols > limits.maxDimension || rows > limits.maxDimension) {
      throw new AsciicastError(lineNo, `a resize must be COLSxROWS within 1..${limits.maxDimension}, not ${JSON.stringify(data.slice(0, 20))}`);
    }
    return { time, code, data, cols, rows };
  }
  return { time, code: code as "o" | "i" | "m", data };
}

/** Parses a whole recording, or throws `AsciicastError` saying which line is wrong and why. */
export function parseAsciicast(text: string, limits: CastLimits = DEFAULT_CAST_LIMITS): Cast {
  if (text.length > limits.maxBytes) {
    throw new AsciicastError(0, `the recording is larger than ${limits.maxBytes} bytes`);
  }
  let pos = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let lineNo = 0;
  let header: CastHeader | null = null;
  const events: CastEvent[] = [];
  let previous = 0;
  while (pos < text.length) {
    let end = text.indexOf("\n", pos);
    if (end === -1) end = text.length;
    let line = text.slice(pos, end);
    pos = end + 1;
    lineNo += 1;
    if (line.endsWith("\r")) line = line.slice(0, -1);
    if (header === null) {
      header = parseHeader(line, limits);
      continue;
    }
    // Blank lines carry nothing; the trailing newline of the file makes one.
    if (line.trim() === "") continue;
    if (events.length >= limits.maxEvents) throw new AsciicastError(lineNo, `the recording has more than ${limits.maxEvents} events`);
    const event = parseEvent(line, lineNo, previous, limits);
    previous = event.time;
    events.push(event);
  }
  if (header === null) throw new AsciicastError(0, "the recording is empty");
  return { header, events };
}

// Grid layouts. A layout name is ROWSxCOLUMNS: grid1x3 is one row of three panes side by side,
// grid2x1 is two panes stacked. Slots are numbered row by row from the top left, and pane N
// sits in slot N. Pane rectangles are whole pixels that tile the area exactly, so borders do
// not blur and no pixel column is lost to rounding.

export type LayoutName = "single" | "grid2x2" | "grid1x3" | "grid2x1";

export interface LayoutSpec {
  rows: number;
  cols: number;
}

export const LAYOUTS: Readonly<Record<LayoutName, LayoutSpec>> = {
  single: { rows: 1, cols: 1 },
  grid2x2: { rows: 2, cols: 2 },
  grid1x3: { rows: 1, cols: 3 },
  grid2x1: { rows: 2, cols: 1 },
};

export const MAX_PANES = 4;

export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface PaneSpec {
  pane: number;
  title: string;
}

export function parseLayout(name: string): LayoutName {
  if (Object.prototype.hasOwnProperty.call(LAYOUTS, name)) return name as LayoutName;
  throw new Error(`unknown grid layout ${JSON.stringify(name)}; expected single, grid2x2, grid1x3 or grid2x1`);
}

export function slotCount(layout: LayoutName): number {
  const spec = LAYOUTS[layout];
  return spec.rows * spec.cols;
}

/** Splits `length` pixels into `parts` whole-pixel spans separated by `gap`. */
function split(length: number, parts: number, gap: number): { start: number; size: number }[] {
  const usable = Math.max(0, Math.floor(length) - gap * (parts - 1));
  const out: { start: number; size: number }[] = [];
  for (let i = 0; i < parts; i++) {
    const a = Math.round((usable * i) / parts);
    const b = Math.round((usable * (i + 1)) / parts);
    out.push({ start: a + gap * i, size: b - a });
  }
  return out;
}

/** The rectangle of every slot of `layout` in an area of `width` x `height` pixels. */
export function slotRects(layout: LayoutName, width: number, height: number, gap = 0): Rect[] {
  const { rows, cols } = LAYOUTS[layout];
  const xs = split(width, cols, gap);
  const ys = split(height, rows, gap);
  const rects: Rect[] = [];
  for (const y of ys) for (const x of xs) rects.push({ x: x.start, y: y.start, width: x.size, height: y.size });
  return rects;
}

/**
 * Reads the page's `data-panes` JSON: `[{"pane":0,"title":"..."}]`. Each pane must fit a slot
 * of the layout and appear once; the result is sorted by pane number.
 */
export function parsePanes(json: string, layout: LayoutName): PaneSpec[] {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch {
    throw new Error("data-panes is not JSON");
  }
  if (!Array.isArray(v)) throw new Error("data-panes is not a JSON array");
  const slots = slotCount(layout);
  const seen = new Set<number>();
  const panes: PaneSpec[] = [];
  for (const [i, p] of v.entries()) {
    if (typeof p !== "object" || p === null) throw new Error(`data-panes[${i}] is not an object`);
    const { pane, title } = p as { pane?: unknown; title?: unknown };
    if (typeof pane !== "number" || !Number.isInteger(pane) || pane < 0 || pane >= slots) {
      throw new Error(`data-panes[${i}].pane must be an integer from 0 to ${slots - 1} for layout ${layout}`);
    }
    if (seen.has(pane)) throw new Error(`data-panes lists pane ${pane} twice`);
    seen.add(pane);
    panes.push({ pane, title: typeof title === "string" ? title.slice(0, 200) : "" });
  }
  return panes.sort((a, b) => a.pane - b.pane);
}

// Calls `fn` once per animation frame at most when `el` or the window changes size, so dragging
// a window edge refits the terminal smoothly instead of on every intermediate pixel.

export function onResize(el: HTMLElement, fn: () => void): void {
  let pending = false;
  const schedule = () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      fn();
    });
  };
  window.addEventListener("resize", schedule);
  // The web font may arrive after the first fit and change the cell size.
  void document.fonts?.ready.then(schedule);
  if (typeof ResizeObserver !== "undefined") new ResizeObserver(schedule).observe(el);
}

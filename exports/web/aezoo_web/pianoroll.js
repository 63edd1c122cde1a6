// Piano rolls on a canvas: pitch upwards, steps to the right, bar and beat lines, the notes of a
// melody as bars, and a playhead. Used by the melody view (melody.js).

export const NOTE_COLOR = [244, 114, 182]; // #f472b6
const NOTE = `rgb(${NOTE_COLOR.join(", ")})`;
const NOTE_EDGE = "rgba(255, 255, 255, 0.55)";
const SOUNDING = "#fde68a";
const BACKGROUND = "#0f172a";
const BLACK_KEY_ROW = "#131c31";
const NAMES = ["C", "C♯", "D", "D♯", "E", "F", "F♯", "G", "G♯", "A", "A♯", "B"];
const BLACK = new Set([1, 3, 6, 8, 10]);

/** MIDI pitch 60 → "C4". */
export function pitchName(pitch) {
  return `${NAMES[pitch % 12]}${Math.floor(pitch / 12) - 1}`;
}

/** The pitches to show for these melodies' notes: their span and 2 around it, at least `span` rows. */
export function pitchRange(noteLists, span = 15, limits = [21, 108]) {
  const pitches = noteLists.flat().map((n) => n.pitch);
  let low = pitches.length ? Math.min(...pitches) - 2 : 60;
  let high = pitches.length ? Math.max(...pitches) + 2 : 72;
  while (high - low + 1 < span) {
    low -= 1;
    if (high - low + 1 < span) high += 1;
  }
  return [Math.max(limits[0], low), Math.min(limits[1], high)];
}

/** Where things are on a canvas of `width` × `height` device pixels. */
export function geometry(width, height, { steps, range, compact = false, ratio = 1 }) {
  const left = compact ? 0 : Math.round(34 * ratio);
  const top = compact ? 0 : Math.round(16 * ratio);
  const rows = range[1] - range[0] + 1;
  const stepWidth = (width - left) / steps;
  const rowHeight = (height - top) / rows;
  return {
    left,
    top,
    rows,
    stepWidth,
    rowHeight,
    steps,
    range,
    x: (step) => left + step * stepWidth,
    y: (pitch) => top + (range[1] - pitch) * rowHeight, // the row's top edge
  };
}

/** Size `canvas` to its CSS box (times the device pixel ratio); returns the ratio. */
export function fit(canvas) {
  const ratio = window.devicePixelRatio || 1;
  const width = Math.max(1, Math.round(canvas.clientWidth * ratio));
  const height = Math.max(1, Math.round(canvas.clientHeight * ratio));
  if (canvas.width !== width || canvas.height !== height) {
    canvas.width = width;
    canvas.height = height;
  }
  return ratio;
}

/**
 * Draw `notes` ({start, end, pitch} in steps) on `canvas`. Options: `steps`, `stepsPerBar`,
 * `stepsPerQuarter`, `range` ([low, high] pitches), `playhead` (a step, or null), `compact` (no
 * labels). Returns the geometry used.
 */
export function drawRoll(canvas, notes, options) {
  const ratio = fit(canvas);
  const { steps, stepsPerBar, stepsPerQuarter, playhead = null, compact = false } = options;
  const g = canvas.getContext("2d");
  const at = geometry(canvas.width, canvas.height, { ...options, ratio });
  const [low, high] = at.range;
  g.fillStyle = BACKGROUND;
  g.fillRect(0, 0, canvas.width, canvas.height);
  for (let pitch = low; pitch <= high; pitch++) {
    if (BLACK.has(pitch % 12)) {
      g.fillStyle = BLACK_KEY_ROW;
      g.fillRect(at.left, at.y(pitch), canvas.width - at.left, at.rowHeight);
    }
    if (pitch % 12 === 0) {
      g.fillStyle = "rgba(148, 163, 184, 0.16)";
      g.fillRect(at.left, Math.round(at.y(pitch) + at.rowHeight) - ratio, canvas.width - at.left, ratio);
    }
  }
  for (let step = 0; step <= steps; step++) {
    const bar = step % stepsPerBar === 0;
    const beat = step % stepsPerQuarter === 0;
    if (!bar && !beat && (compact || at.stepWidth < 10 * ratio)) continue; // sixteenths where there is room
    g.fillStyle = bar ? "rgba(226, 232, 240, 0.55)" : beat ? "rgba(148, 163, 184, 0.3)" : "rgba(148, 163, 184, 0.1)";
    const width = bar ? Math.max(1, Math.round(1.5 * ratio)) : Math.max(1, Math.round(ratio));
    const x = Math.min(canvas.width - width, Math.round(at.x(step) - width / 2));
    g.fillRect(Math.max(at.left, x), at.top, width, canvas.height - at.top);
  }
  if (!compact) labels(g, at, canvas, stepsPerBar, ratio);
  const gap = Math.max(1, Math.round(ratio));
  for (const note of notes) {
    if (note.pitch < low || note.pitch > high) continue;
    const x = at.x(note.start) + gap;
    const width = Math.max(gap, at.x(note.end) - at.x(note.start) - 2 * gap);
    const y = at.y(note.pitch) + (at.rowHeight > 4 * ratio ? gap : 0);
    const height = Math.max(gap, at.rowHeight - (at.rowHeight > 4 * ratio ? 2 * gap : 0));
    const sounding = playhead !== null && playhead >= note.start && playhead < note.end;
    g.fillStyle = sounding ? SOUNDING : NOTE;
    roundRect(g, x, y, width, height, Math.min(3 * ratio, height / 2));
    g.fill();
    if (!compact && height > 6 * ratio) {
      g.fillStyle = NOTE_EDGE;
      g.fillRect(x, y, Math.max(gap, Math.round(2 * ratio)), height); // the onset
    }
  }
  if (playhead !== null && playhead >= 0 && playhead <= steps) {
    g.fillStyle = "rgba(253, 230, 138, 0.9)";
    g.fillRect(Math.round(at.x(playhead)), at.top, Math.max(1, Math.round(2 * ratio)), canvas.height - at.top);
  }
  return at;
}

function labels(g, at, canvas, stepsPerBar, ratio) {
  const [low, high] = at.range;
  g.fillStyle = "#0b1222";
  g.fillRect(0, 0, at.left, canvas.height);
  g.fillRect(0, 0, canvas.width, at.top);
  g.font = `${10 * ratio}px system-ui, sans-serif`;
  g.textBaseline = "middle";
  g.fillStyle = "rgba(203, 213, 225, 0.85)";
  const every = at.rowHeight >= 11 * ratio ? 1 : at.rowHeight >= 6 * ratio ? 3 : 12;
  for (let pitch = low; pitch <= high; pitch++) {
    const named = pitch % 12 === 0 || (every === 1 && !BLACK.has(pitch % 12)) || (every === 3 && [0, 4, 7].includes(pitch % 12));
    if (!named) continue;
    g.fillStyle = pitch % 12 === 0 ? "rgba(241, 245, 249, 0.95)" : "rgba(148, 163, 184, 0.8)";
    g.fillText(pitchName(pitch), 4 * ratio, at.y(pitch) + at.rowHeight / 2);
  }
  g.fillStyle = "rgba(203, 213, 225, 0.85)";
  for (let bar = 0; bar * stepsPerBar < at.steps; bar++) {
    g.fillText(String(bar + 1), at.x(bar * stepsPerBar) + 4 * ratio, at.top / 2);
  }
}

function roundRect(g, x, y, width, height, radius) {
  g.beginPath();
  if (g.roundRect) g.roundRect(x, y, width, height, radius);
  else g.rect(x, y, width, height);
}

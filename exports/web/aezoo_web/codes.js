// The code-grid view, for image decoders whose input is a grid of integer codes (indices into a
// codebook: the manifest gives the input's `classes` and, in its sampling, how often training codes
// chose each index): a drawn grid decoded into an image, a "Random" button that draws a new grid,
// and the grid itself, where a click on a cell gives it the next code (index + 1, back to 0 after
// the last) and redraws.
//
// Hook methods: `setCodes(rows)` (a list of rows of indices; decodes and redraws, resolves once the
// canvas shows them), `getCodes()`, `randomCodes()` (what the button does), `lastDrawMs` (from the
// grid's change to the redrawn canvas), `canvas`.

import { $, hook, openSession, ort, showError, toImageData } from "./common.js";

export const name = "codes";

const INTEGER_ARRAYS = { int64: (codes) => BigInt64Array.from(codes, BigInt), int32: (codes) => Int32Array.from(codes) };

/** Why this view cannot show the export's decoder, or null when it can. */
export function unsupported(manifest) {
  const decoder = manifest.models?.decoder;
  if (!decoder) return "the export has no decoder";
  const input = decoder.inputs[0];
  const classes = input?.classes ?? input?.sampling?.classes;
  if (decoder.inputs.length !== 1 || !INTEGER_ARRAYS[input.dtype] || !Number.isInteger(classes) || classes < 2) {
    return "its code is not a grid of integer codes";
  }
  const dims = input.shape.slice(1);
  if (dims.length !== 2 || !dims.every((d) => Number.isInteger(d) && d > 0)) {
    return `its integer code [${input.shape.join(", ")}] is not a fixed grid [batch, rows, columns]`;
  }
  const kind = manifest.dataset?.kind;
  if (kind && kind !== "image") return `its decoder makes ${kind} data, not images`;
  const output = decoder.outputs[0];
  const shape = output.shape.slice(1);
  if (output.dtype !== "float32" || shape.length !== 3 || !shape.every((d) => Number.isInteger(d) && d > 0)) {
    return `its decoder's output ${output.name} [${output.shape.join(", ")}] is not an image [batch, C, H, W]`;
  }
  if (![1, 3].includes(shape[0])) return `its images have ${shape[0]} channels (this page draws 1 or 3)`;
  return null;
}

/** How the manifest says to draw a grid: each cell from `probabilities`, else uniformly. */
function codeDrawer(sampling, classes) {
  const probabilities = sampling?.probabilities;
  if (!Array.isArray(probabilities) || probabilities.length !== classes) {
    return {
      draw: () => Math.floor(Math.random() * classes),
      note: `each cell drawn uniformly from the ${classes} codes`,
    };
  }
  const cumulative = new Float64Array(classes);
  let total = 0;
  probabilities.forEach((p, i) => {
    total += Math.max(0, Number(p));
    cumulative[i] = total;
  });
  const draw = () => {
    const u = Math.random() * total;
    let low = 0;
    let high = classes - 1;
    while (low < high) {
      const mid = (low + high) >> 1;
      if (cumulative[mid] > u) high = mid;
      else low = mid + 1;
    }
    return low;
  };
  const examples = sampling.examples ? ` in the codes of ${sampling.examples.toLocaleString("en")} training examples` : "";
  return { draw, note: `each cell drawn independently by how often each of the ${classes} codes occurs${examples}` };
}

class CodeGrid {
  constructor(manifest, session) {
    const entry = manifest.models.decoder;
    this.session = session;
    this.input = entry.inputs[0];
    this.output = entry.outputs[0];
    this.classes = this.input.classes ?? this.input.sampling.classes;
    [this.rows, this.cols] = this.input.shape.slice(1);
    this.shape = this.output.shape.slice(1); // [C, H, W]
    this.range = this.output.range ?? [0, 1];
    this.drawer = codeDrawer(this.input.sampling, this.classes);
    this.codes = new Int32Array(this.rows * this.cols);
    this.queue = Promise.resolve(); // one session.run at a time
    this.requested = 0; // generation of the latest change
    const [channels, height, width] = this.shape;
    this.canvas = $("grid-image");
    this.canvas.width = width;
    this.canvas.height = height;
    $("grid-image-note").textContent = `${width}×${height}, ${channels === 1 ? "grey" : "RGB"}`;
    $("grid-note").textContent = `${this.rows}×${this.cols} codes, each one of ${this.classes}`;
    $("grid-help").textContent =
      `Click a cell to give it the next code (index + 1, back to 0 after ${this.classes - 1}). Random: ${this.drawer.note}.`;
    this.buildCells();
    $("grid-random").addEventListener("click", () => this.random().catch(showError));
  }

  buildCells() {
    const grid = $("code-grid");
    grid.style.setProperty("--cols", String(this.cols));
    this.cells = [];
    for (let row = 0; row < this.rows; row++) {
      for (let col = 0; col < this.cols; col++) {
        const cell = document.createElement("button");
        cell.type = "button";
        cell.className = "code-cell";
        cell.dataset.row = String(row);
        cell.dataset.col = String(col);
        const index = row * this.cols + col;
        cell.addEventListener("click", () => this.next(index).catch(showError));
        grid.append(cell);
        this.cells.push(cell);
      }
    }
  }

  /** The cells' labels and tints follow the codes. */
  label() {
    this.codes.forEach((code, i) => {
      const cell = this.cells[i];
      cell.textContent = String(code);
      cell.style.background = `hsl(${Math.round((360 * code) / this.classes)}, 60%, 88%)`;
      cell.setAttribute(
        "aria-label",
        `row ${Number(cell.dataset.row) + 1}, column ${Number(cell.dataset.col) + 1}: code ${code}; click for the next`,
      );
    });
  }

  /** Decode `codes` (rows × cols indices) and draw them, unless a later change came first. */
  async show(codes) {
    const changed = performance.now();
    const generation = ++this.requested;
    this.codes = Int32Array.from(codes);
    this.label();
    const feeds = {
      [this.input.name]: new ort.Tensor(this.input.dtype, INTEGER_ARRAYS[this.input.dtype](this.codes), [1, this.rows, this.cols]),
    };
    const job = this.queue.then(() => this.session.run(feeds));
    this.queue = job.catch(() => {});
    const results = await job;
    if (generation !== this.requested) return; // a later grid is on its way
    const image = toImageData(results[this.output.name].data, 0, this.shape, this.range);
    this.canvas.getContext("2d").putImageData(image, 0, 0);
    hook.lastDrawMs = performance.now() - changed;
    $("grid-timing").textContent = `${hook.lastDrawMs.toFixed(1)} ms`;
  }

  next(index) {
    const codes = Int32Array.from(this.codes);
    codes[index] = (codes[index] + 1) % this.classes;
    return this.show(codes);
  }

  random() {
    return this.show(Int32Array.from({ length: this.rows * this.cols }, () => this.drawer.draw()));
  }
}

export async function open(manifest) {
  const view = new CodeGrid(manifest, await openSession(manifest, "decoder"));
  $("code-grid-view").hidden = false;
  hook.canvas = view.canvas;
  hook.lastDrawMs = null;
  hook.getCodes = () => Array.from({ length: view.rows }, (_, r) => Array.from(view.codes.slice(r * view.cols, (r + 1) * view.cols)));
  hook.setCodes = (rows) => {
    const flat = rows.flat();
    if (rows.length !== view.rows || flat.length !== view.rows * view.cols) {
      throw new Error(`setCodes takes ${view.rows} rows of ${view.cols} codes`);
    }
    if (!flat.every((c) => Number.isInteger(c) && c >= 0 && c < view.classes)) {
      throw new Error(`codes are whole numbers from 0 to ${view.classes - 1}`);
    }
    return view.show(flat);
  };
  hook.randomCodes = () => view.random();
  await view.random();
}

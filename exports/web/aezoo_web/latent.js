// The latent view: a 2-D pad over two code dimensions, a slider per dimension and the decoded
// image, redrawn live, for image decoders whose code is one vector.
//
// Hook methods: `setCode(array)` (decodes and redraws; resolves once the canvas shows that code),
// `getCode()`, `lastDrawMs` (from the code's change to the redrawn canvas), `canvas`.

import { $, fmt, gaussian, hook, openSession, ort, showError, toImageData } from "./common.js";

const SPREAD = 3; // the pad and sliders span mean ± 3 std
const MAP_CELLS = 12; // the decoded map behind the pad: MAP_CELLS × MAP_CELLS images
const SLIDER_STEPS = 1000;

export const name = "latent";

/** Why this view cannot explore the export's decoder, or null when it can. */
export function unsupported(manifest) {
  const decoder = manifest.models?.decoder;
  if (!decoder) return "the export has no decoder";
  const kind = manifest.dataset?.kind;
  if (kind && kind !== "image") {
    return `its decoder makes ${kind} data, not images`;
  }
  if (decoder.inputs.length !== 1) {
    const names = decoder.inputs.map((t) => t.name).join(", ");
    return `its decoder takes ${decoder.inputs.length} inputs (${names}), and this page draws one code vector`;
  }
  const input = decoder.inputs[0];
  const dims = input.shape.slice(1);
  if (input.dtype !== "float32") return `its code is ${input.dtype}, not float32`;
  if (input.sampling?.kind === "none" || dims.length !== 1 || !Number.isInteger(dims[0]) || dims[0] < 1) {
    return `its code is a feature map [${dims.join(", ")}], not a vector`;
  }
  const output = decoder.outputs[0];
  const shape = output.shape.slice(1);
  if (output.dtype !== "float32" || shape.length !== 3 || !shape.every((d) => Number.isInteger(d) && d > 0)) {
    return `its decoder's output ${output.name} [${output.shape.join(", ")}] is not an image [batch, C, H, W]`;
  }
  if (![1, 3].includes(shape[0])) return `its images have ${shape[0]} channels (this page draws 1 or 3)`;
  return null;
}

/** Per-dimension [low, centre, high] of the pad and sliders, and a drawing function if any. */
function codeSpace(sampling, size) {
  const at = (value, d, fallback) => {
    if (Array.isArray(value)) return Number(value[d]);
    return value === undefined || value === null ? fallback : Number(value);
  };
  const kind = sampling?.kind ?? "unknown";
  const lows = new Float64Array(size);
  const highs = new Float64Array(size);
  const centres = new Float64Array(size);
  let draw = null;
  let note;
  if (kind === "normal" || kind === "empirical") {
    const means = Array.from({ length: size }, (_, d) => at(sampling.mean, d, 0));
    const stds = Array.from({ length: size }, (_, d) => at(sampling.std, d, 1));
    for (let d = 0; d < size; d++) {
      const spread = SPREAD * (stds[d] > 0 ? stds[d] : 1);
      lows[d] = means[d] - spread;
      highs[d] = means[d] + spread;
      centres[d] = means[d];
    }
    draw = () => Float32Array.from(means, (m, d) => m + stds[d] * gaussian());
    note =
      kind === "normal"
        ? `prior N(${fmt(means[0])}, ${fmt(stds[0])}²): the pad spans ±${SPREAD}σ`
        : `statistics of ${sampling.examples ?? "the"} encoded examples: mean ± ${SPREAD} std per dimension`;
  } else if (kind === "uniform" && sampling.low !== undefined && sampling.high !== undefined) {
    for (let d = 0; d < size; d++) {
      lows[d] = at(sampling.low, d, -1);
      highs[d] = at(sampling.high, d, 1);
      centres[d] = (lows[d] + highs[d]) / 2;
    }
    draw = () => Float32Array.from(lows, (lo, d) => lo + (highs[d] - lo) * Math.random());
    note = "uniform codes";
  } else {
    lows.fill(-SPREAD);
    highs.fill(SPREAD);
    note = `the manifest gives no statistics for this code (${kind}); the pad spans ±${SPREAD}, a guess`;
    if (kind === "constant" && sampling.value !== undefined) {
      for (let d = 0; d < size; d++) centres[d] = at(sampling.value, d, 0);
    }
  }
  return { kind, lows, highs, centres, draw, note };
}

class Decoder {
  constructor(session, entry) {
    this.session = session;
    this.input = entry.inputs[0];
    this.output = entry.outputs[0];
    this.size = this.input.shape[1];
    this.shape = this.output.shape.slice(1); // [C, H, W]
    this.range = this.output.range ?? [0, 1];
    this.batched = !Number.isInteger(this.input.shape[0]) || this.input.shape[0] === 0;
    this.queue = Promise.resolve(); // one session.run at a time
  }

  /** The decoder's output for `codes` (a Float32Array of n × size numbers), as n images. */
  run(codes, n) {
    const job = this.queue.then(async () => {
      const feeds = { [this.input.name]: new ort.Tensor("float32", codes, [n, this.size]) };
      const results = await this.session.run(feeds);
      return results[this.output.name].data;
    });
    this.queue = job.catch(() => {});
    return job;
  }
}

class Explorer {
  constructor(manifest, decoder) {
    this.manifest = manifest;
    this.decoder = decoder;
    this.space = codeSpace(decoder.input.sampling, decoder.size);
    this.code = Float32Array.from(this.space.centres);
    this.dims = [0, Math.min(1, decoder.size - 1)];
    this.requested = 0; // generation of the latest code change
    this.drawn = 0; // generation the canvas shows
    this.drawing = false;
    this.waiters = [];
    this.changedAt = performance.now();
    this.mapTimer = null;
    this.mapImage = null;
    this.padWidth = 0; // CSS pixels: measured when the view opens, then kept by a ResizeObserver
    const [channels, height, width] = decoder.shape;
    this.image = $("image");
    this.image.width = width;
    this.image.height = height;
    this.pad = $("pad");
    this.buildAxes();
    this.buildSliders();
    this.bindPad();
    this.bindButtons();
    const polarity = manifest.dataset?.polarity;
    $("image-note").textContent =
      `${width}×${height}, ${channels === 1 ? "grey" : "RGB"}, values ${this.decoder.range.join("–")}` +
      (polarity ? `; ${polarity}` : "");
    $("code-note").textContent = this.space.note;
    // the observer reports the pad's size after the browser's own layout, so no redraw reads it (a
    // read after the sliders changed would lay the whole page out inside the redraw)
    new ResizeObserver(([entry]) => {
      this.padWidth = entry.contentRect.width;
      this.drawPad();
    }).observe(this.pad);
  }

  /** Measure the pad once the view is shown (before the observer's first report) and draw it. */
  showPad() {
    this.padWidth = this.pad.getBoundingClientRect().width;
    this.drawPad();
  }

  // the code

  setDim(d, value) {
    this.code[d] = Math.min(this.space.highs[d], Math.max(this.space.lows[d], value));
  }

  setCode(values) {
    this.code = Float32Array.from(values);
    this.changed();
    return this.redraw();
  }

  /**
   * Code dimensions `dims` changed (all of them when left out): their sliders and the pad follow, and
   * the decoded map (debounced) when one of them is off the pad. Other sliders are not touched.
   */
  changed(dims = this.allDims()) {
    this.changedAt = performance.now();
    this.syncSliders(dims);
    this.drawPad();
    if (dims.some((d) => !this.dims.includes(d))) this.scheduleMap();
  }

  allDims() {
    return Array.from({ length: this.decoder.size }, (_, d) => d);
  }

  /** Decode the current code and draw it; resolves once the canvas shows it (or a later code). */
  redraw() {
    const generation = ++this.requested;
    const done = new Promise((resolve, reject) => this.waiters.push({ generation, resolve, reject }));
    if (!this.drawing) this.drawLoop();
    return done;
  }

  async drawLoop() {
    this.drawing = true;
    try {
      while (this.drawn < this.requested) {
        const generation = this.requested;
        const since = this.changedAt;
        const started = performance.now();
        const data = await this.decoder.run(Float32Array.from(this.code), 1);
        this.image.getContext("2d").putImageData(toImageData(data, 0, this.decoder.shape, this.decoder.range), 0, 0);
        this.drawn = generation;
        const now = performance.now();
        hook.lastDrawMs = now - since;
        $("timing").textContent = `decoded in ${fmt(now - started, 1)} ms`;
        this.settle(generation);
      }
    } catch (error) {
      showError(error);
      for (const waiter of this.waiters.splice(0)) waiter.reject(error);
    } finally {
      this.drawing = false;
    }
  }

  settle(generation) {
    const still = [];
    for (const waiter of this.waiters) {
      if (waiter.generation <= generation) waiter.resolve();
      else still.push(waiter);
    }
    this.waiters = still;
  }

  // controls

  buildAxes() {
    const size = this.decoder.size;
    const fixed = size <= 2;
    for (const [index, select] of [$("dim-x"), $("dim-y")].entries()) {
      for (let d = 0; d < size; d++) select.add(new Option(`z[${d}]`, String(d)));
      select.value = String(this.dims[index]);
      select.disabled = fixed;
      select.addEventListener("change", () => {
        this.dims[index] = Number(select.value);
        this.drawPad();
        this.scheduleMap(0);
      });
    }
    $("pad-note").textContent =
      size === 1
        ? "a 1-d code: drag left and right"
        : size === 2
          ? "the whole latent plane: drag to move the code"
          : `two of ${size} dimensions; the others stay as the sliders set them`;
  }

  buildSliders() {
    const box = $("sliders");
    this.sliders = [];
    for (let d = 0; d < this.decoder.size; d++) {
      const row = document.createElement("label");
      row.className = "slider";
      const name = document.createElement("span");
      name.className = "dim";
      name.textContent = `z[${d}]`;
      const input = document.createElement("input");
      input.type = "range";
      input.min = String(this.space.lows[d]);
      input.max = String(this.space.highs[d]);
      input.step = String((this.space.highs[d] - this.space.lows[d]) / SLIDER_STEPS);
      input.setAttribute("aria-label", `code dimension ${d}`);
      const value = document.createElement("output");
      input.addEventListener("input", () => {
        this.setDim(d, Number(input.value));
        this.changed([d]);
        this.redraw();
      });
      row.append(name, input, value);
      box.append(row);
      this.sliders.push({ input, value });
    }
    this.syncSliders(this.allDims());
  }

  /** Sliders `dims` show the code's values. */
  syncSliders(dims) {
    for (const d of dims) {
      const { input, value } = this.sliders[d];
      input.value = String(this.code[d]);
      value.textContent = fmt(this.code[d]);
    }
  }

  bindButtons() {
    const sample = $("sample");
    if (this.space.draw) {
      sample.addEventListener("click", () => {
        this.code = this.space.draw();
        this.changed();
        this.redraw();
      });
    } else {
      sample.disabled = true;
      sample.title = "the manifest does not say how to draw this code";
    }
    $("reset").addEventListener("click", () => {
      this.code = Float32Array.from(this.space.centres);
      this.changed();
      this.redraw();
    });
    const map = $("show-map");
    map.disabled = !this.decoder.batched;
    if (!this.decoder.batched) map.checked = false;
    map.addEventListener("change", () => (map.checked ? this.scheduleMap(0) : this.drawPad()));
  }

  /** Pad position (0..1 from left, 0..1 from top) of a code value pair, and back. */
  toPad(d, value, vertical) {
    const t = (value - this.space.lows[d]) / (this.space.highs[d] - this.space.lows[d]);
    return vertical ? 1 - t : t;
  }

  fromPad(d, t, vertical) {
    const u = vertical ? 1 - t : t;
    return this.space.lows[d] + u * (this.space.highs[d] - this.space.lows[d]);
  }

  bindPad() {
    const pad = this.pad;
    const move = (event) => {
      const box = pad.getBoundingClientRect();
      const tx = Math.min(1, Math.max(0, (event.clientX - box.left) / box.width));
      const ty = Math.min(1, Math.max(0, (event.clientY - box.top) / box.height));
      const [dx, dy] = this.dims;
      this.setDim(dx, this.fromPad(dx, tx, false));
      if (this.decoder.size > 1) this.setDim(dy, this.fromPad(dy, ty, true));
      this.changed(this.decoder.size > 1 ? [dx, dy] : [dx]);
      this.redraw();
    };
    pad.addEventListener("pointerdown", (event) => {
      pad.setPointerCapture(event.pointerId);
      pad.classList.add("dragging");
      move(event);
    });
    pad.addEventListener("pointermove", (event) => {
      if (pad.hasPointerCapture(event.pointerId)) move(event);
    });
    const release = (event) => {
      pad.classList.remove("dragging");
      if (pad.hasPointerCapture(event.pointerId)) pad.releasePointerCapture(event.pointerId);
    };
    pad.addEventListener("pointerup", release);
    pad.addEventListener("pointercancel", release);
    pad.addEventListener("keydown", (event) => {
      const steps = { ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowDown: [1, -1], ArrowUp: [1, 1] };
      const step = steps[event.key];
      if (!step) return;
      event.preventDefault();
      const d = this.dims[step[0]];
      const delta = ((this.space.highs[d] - this.space.lows[d]) / 100) * (event.shiftKey ? 10 : 1);
      this.setDim(d, this.code[d] + step[1] * delta);
      this.changed([d]);
      this.redraw();
    });
  }

  // the pad's picture: the decoded map, a grid, the axes and the code

  scheduleMap(delay = 250) {
    if (!$("show-map").checked) return;
    clearTimeout(this.mapTimer);
    this.mapTimer = setTimeout(() => this.renderMap().catch(showError), delay);
  }

  async renderMap() {
    const [dx, dy] = this.dims;
    const n = MAP_CELLS * MAP_CELLS;
    const size = this.decoder.size;
    const codes = new Float32Array(n * size);
    for (let row = 0; row < MAP_CELLS; row++) {
      for (let col = 0; col < MAP_CELLS; col++) {
        const at = (row * MAP_CELLS + col) * size;
        codes.set(this.code, at);
        codes[at + dx] = this.fromPad(dx, (col + 0.5) / MAP_CELLS, false);
        if (size > 1) codes[at + dy] = this.fromPad(dy, (row + 0.5) / MAP_CELLS, true);
      }
    }
    const data = await this.decoder.run(codes, n);
    const [, height, width] = this.decoder.shape;
    const sheet = document.createElement("canvas");
    sheet.width = width * MAP_CELLS;
    sheet.height = height * MAP_CELLS;
    const context = sheet.getContext("2d");
    for (let i = 0; i < n; i++) {
      const image = toImageData(data, i, this.decoder.shape, this.decoder.range);
      context.putImageData(image, (i % MAP_CELLS) * width, Math.floor(i / MAP_CELLS) * height);
    }
    this.mapImage = sheet;
    this.drawPad();
  }

  drawPad() {
    const pad = this.pad;
    const ratio = window.devicePixelRatio || 1;
    const side = Math.max(1, Math.round(this.padWidth * ratio));
    if (pad.width !== side || pad.height !== side) {
      pad.width = side;
      pad.height = side;
    }
    const g = pad.getContext("2d");
    g.fillStyle = "#0f172a";
    g.fillRect(0, 0, side, side);
    if (this.mapImage && $("show-map").checked) {
      g.globalAlpha = 0.5;
      g.imageSmoothingEnabled = true;
      g.drawImage(this.mapImage, 0, 0, side, side);
      g.globalAlpha = 1;
    }
    const [dx, dy] = this.dims;
    g.strokeStyle = "rgba(148, 163, 184, 0.25)";
    g.lineWidth = ratio;
    for (let k = -SPREAD; k <= SPREAD; k++) {
      const t = (k + SPREAD) / (2 * SPREAD);
      g.beginPath();
      g.moveTo(t * side, 0);
      g.lineTo(t * side, side);
      g.moveTo(0, t * side);
      g.lineTo(side, t * side);
      g.stroke();
    }
    g.fillStyle = "rgba(226, 232, 240, 0.9)";
    g.shadowColor = "#000";
    g.shadowBlur = 3 * ratio;
    g.font = `${11 * ratio}px system-ui, sans-serif`;
    g.fillText(`z[${dx}] →`, side - 52 * ratio, side - 8 * ratio);
    if (this.decoder.size > 1) g.fillText(`↑ z[${dy}]`, 8 * ratio, 16 * ratio);
    g.shadowBlur = 0;
    const x = this.toPad(dx, this.code[dx], false) * side;
    const y = this.decoder.size > 1 ? this.toPad(dy, this.code[dy], true) * side : side / 2;
    g.strokeStyle = "rgba(244, 114, 182, 0.6)";
    g.beginPath();
    g.moveTo(x, 0);
    g.lineTo(x, side);
    g.moveTo(0, y);
    g.lineTo(side, y);
    g.stroke();
    g.fillStyle = "#f472b6";
    g.strokeStyle = "#fff";
    g.lineWidth = 2 * ratio;
    g.beginPath();
    g.arc(x, y, 6 * ratio, 0, 2 * Math.PI);
    g.fill();
    g.stroke();
  }
}

/** Open the view: decode the centre code and draw it. */
export async function open(manifest) {
  const entry = manifest.models.decoder;
  const session = await openSession(manifest, "decoder");
  const explorer = new Explorer(manifest, new Decoder(session, entry));
  $("explorer").hidden = false;
  hook.canvas = $("image");
  hook.lastDrawMs = null;
  hook.setCode = async (values) => {
    const size = explorer.decoder.size;
    if (!values || values.length !== size || !Array.from(values).every(Number.isFinite)) {
      throw new Error(`setCode takes ${size} finite numbers`);
    }
    return explorer.setCode(values);
  };
  hook.getCode = () => Array.from(explorer.code);
  explorer.showPad();
  explorer.scheduleMap(0);
  await explorer.redraw();
}

// The melody view, for exports whose manifest's `decoding.kind` is "melody" (musicvae): sample a
// melody at a temperature (z ~ the prior, Gumbel noise by the manifest's `noise` rule, decoded by
// onnxruntime-web), see it as a piano roll, hear it (WebAudio), download it as a MIDI file; keep two
// as A and B and decode the spherical path between their codes (argmax), play it, download it.
//
// Hook methods: `decode({z, temperature, noise})` → tokens (a list per code), `sample({temperature,
// seed})` → {z, temperature, seed, noise, tokens} (as the Sample button, shown on the page),
// `midiBytes(tokens)` (one melody, or a list of melodies one after another) → bytes, `tokens`,
// `z`, `notes` (the current melody), `lastSampleMs` (Sample's click to playable notes), `keep("A"|
// "B")`, `interpolate(steps)` → tokens per point, `path` ({codes, tokens}), `select(index)`,
// `canvas`, `cell(step, pitch)` → {x, y} canvas pixel of a cell's centre, `noteColor`, `player`.

import { fmt, hook, openSession, ort, showError } from "./common.js";
import { melodyMidi, melodyProblem, pathMidi, pathNotes, secondsPerStep, tokensToNotes } from "./midi.js";
import { NOTE_COLOR, drawRoll, pitchName, pitchRange } from "./pianoroll.js";
import { drawNormal, gumbelNoise, gumbelProblem, randomSeed, slerpPath, streams } from "./sampling.js";
import { Synth } from "./synth.js";
import { build } from "./melody-page.js";

export const name = "melody";

/** The decoder's inputs by role ({code, temperature, noise}), or a string saying what is wrong. */
function roles(manifest) {
  const inputs = manifest.models.decoder.inputs;
  const noise = inputs.find((s) => s.sampling?.kind === "gumbel") ?? inputs.find((s) => s.name === "noise");
  const temperature = inputs.find((s) => s.name === "temperature");
  const code = inputs.find((s) => s !== noise && s !== temperature);
  if (inputs.length !== 3 || !code || !noise || !temperature) {
    return `its melody decoder's inputs (${inputs.map((s) => s.name).join(", ")}) are not a code, "temperature" and "noise"`;
  }
  return { code, temperature, noise };
}

/** Why this view cannot play the export's decoder, or null when it can. */
export function unsupported(manifest) {
  const decoding = manifest.decoding;
  if (decoding?.kind !== "melody") return "it does not make melodies (its manifest's decoding is not a melody)";
  const problem = melodyProblem(decoding);
  if (problem) return problem;
  const found = roles(manifest);
  if (typeof found === "string") return found;
  const { code, noise } = found;
  const size = code.shape[1];
  if (code.dtype !== "float32" || code.shape.length !== 2 || !Number.isInteger(size)) return `its code ${code.name} is not a float32 vector`;
  if (code.sampling?.kind !== "normal") return `its code is drawn by ${JSON.stringify(code.sampling?.kind)}, and this view draws from a normal prior`;
  const shape = noise.shape.slice(1);
  if (shape[0] !== decoding.steps || shape[1] !== decoding.classes) return `its noise [${noise.shape}] is not [batch, ${decoding.steps}, ${decoding.classes}]`;
  const gumbel = gumbelProblem(noise.sampling);
  if (gumbel) return gumbel;
  if (!manifest.models.decoder.outputs.some((o) => o.name === decoding.output)) return `its decoder has no output ${decoding.output}`;
  return null;
}

/** decoder.onnx: codes, temperatures and noise in, tokens out; one run at a time. */
class MelodyDecoder {
  constructor(session, manifest) {
    this.session = session;
    this.decoding = manifest.decoding;
    this.roles = roles(manifest);
    this.size = this.roles.code.shape[1];
    this.steps = this.decoding.steps;
    this.classes = this.decoding.classes;
    this.queue = Promise.resolve();
  }

  /** Token arrays for `codes` (arrays of `size` numbers) at `temperatures`, with `noise` (flat, or null: zeros). */
  run(codes, temperatures, noise = null) {
    const n = codes.length;
    const per = this.steps * this.classes;
    const flat = new Float32Array(n * this.size);
    codes.forEach((code, i) => flat.set(code, i * this.size));
    const job = this.queue.then(async () => {
      const feeds = {
        [this.roles.code.name]: new ort.Tensor("float32", flat, [n, this.size]),
        [this.roles.temperature.name]: new ort.Tensor("float32", Float32Array.from(temperatures), [n]),
        [this.roles.noise.name]: new ort.Tensor("float32", noise ?? new Float32Array(n * per), [n, this.steps, this.classes]),
      };
      const results = await this.session.run(feeds);
      const data = results[this.decoding.output].data;
      return Array.from({ length: n }, (_, i) => Array.from(data.subarray(i * this.steps, (i + 1) * this.steps), Number));
    });
    this.queue = job.catch(() => {});
    return job;
  }
}

class MelodyView {
  constructor(manifest, decoder, ui) {
    this.manifest = manifest;
    this.decoding = manifest.decoding;
    this.decoder = decoder;
    this.synth = new Synth();
    this.current = null; // {z, tokens, notes, label}
    this.kept = { A: null, B: null };
    this.path = []; // [{z, tokens, notes, t}]
    this.selected = -1;
    this.playing = null; // "melody" | "path"
    this.frame = null;
    this.ui = ui;
    this.bind();
    this.thumbs = []; // [canvas, notes, range] of the path's points
    new ResizeObserver(() => this.resized()).observe(this.ui.roll);
  }

  get melodySeconds() {
    return secondsPerStep(this.decoding);
  }

  show(melody) {
    this.current = melody;
    this.redraw();
    const notes = melody.notes;
    const pitches = notes.map((n) => n.pitch);
    const span = notes.length ? `, ${pitchName(Math.min(...pitches))}–${pitchName(Math.max(...pitches))}` : "";
    const d = this.decoding;
    this.ui.note.textContent =
      `${melody.label} · ${d.bars} bars of ${d.time_signature.join("/")} at ${fmt(d.midi.tempo_qpm)} qpm · ` +
      `${notes.length} note${notes.length === 1 ? "" : "s"}${span}`;
    for (const button of [this.ui.play, this.ui.download, this.ui.keepA, this.ui.keepB]) button.disabled = false;
  }

  redraw(playhead = null) {
    if (!this.current) return;
    this.geometry = drawRoll(this.ui.roll, this.current.notes, {
      ...this.grid(),
      range: pitchRange([this.current.notes], 15, this.limits()),
      playhead,
    });
  }

  /** Everything again, at the canvases' new sizes. */
  resized() {
    this.redraw(); // while playing, the next frame draws the playhead again
    for (const key of ["A", "B"]) this.drawMini(this.ui.kept[key], this.kept[key]?.notes ?? null);
    for (const [canvas, notes, range] of this.thumbs) this.drawMini(canvas, notes, range);
  }

  drawMini(canvas, notes, range = null) {
    if (!notes) return;
    drawRoll(canvas, notes, { ...this.grid(), compact: true, range: range ?? pitchRange([notes], 15, this.limits()) });
  }

  /** The piano roll's steps, bars and beats. */
  grid() {
    const d = this.decoding;
    return { steps: d.steps, stepsPerBar: d.steps_per_bar, stepsPerQuarter: d.steps_per_quarter };
  }

  /** The lowest and highest pitch the decoder plays. */
  limits() {
    return [this.decoding.events.lowest_pitch, this.decoding.events.highest_pitch];
  }

  melodyOf(z, tokens, label) {
    return { z: Float32Array.from(z), tokens, notes: tokensToNotes(tokens, this.decoding), label };
  }

  // sampling

  async sample(temperature, seed, started = performance.now()) {
    if (!(Number.isFinite(temperature) && temperature >= 0)) throw new Error(`the temperature must be a number ≥ 0, not ${temperature}`);
    const random = streams(seed);
    const z = drawNormal(this.decoder.roles.code.sampling, this.decoder.size, random.code);
    const noise = gumbelNoise(this.decoder.roles.noise.sampling, this.decoder.steps * this.decoder.classes, random.noise);
    const [tokens] = await this.decoder.run([z], [temperature], noise);
    this.stop();
    this.show(this.melodyOf(z, tokens, `temperature ${fmt(temperature)}, seed ${seed}`));
    hook.lastSampleMs = performance.now() - started;
    this.ui.timing.textContent = `sampled in ${fmt(hook.lastSampleMs, 1)} ms`;
    this.selected = -1;
    this.markSelected();
    return { z: Array.from(z), temperature, seed, noise: Array.from(noise), tokens };
  }

  temperature() {
    return Number(this.ui.temperature.value);
  }

  // playing

  play(what) {
    const d = this.decoding;
    const velocity = d.midi.velocity;
    const melodies = what === "path" ? this.path.map((p) => p.tokens) : [this.current.tokens];
    const notes = what === "path" ? pathNotes(melodies, d) : this.current.notes;
    this.playing = what;
    const scheduled = this.synth.play(notes, d.steps * melodies.length, this.melodySeconds, velocity, () => this.ended());
    this.ui.stop.disabled = false;
    hook.player = { playing: what, notes: scheduled.notes, seconds: scheduled.seconds };
    this.animate();
  }

  animate() {
    cancelAnimationFrame(this.frame);
    const tick = () => {
      const position = this.synth.position();
      if (position === null) return;
      if (this.playing === "path") {
        const index = Math.min(this.path.length - 1, Math.floor(position / this.decoding.steps));
        if (index !== this.selected) this.select(index, false);
        this.redraw(position - index * this.decoding.steps);
      } else {
        this.redraw(position);
      }
      this.frame = requestAnimationFrame(tick);
    };
    this.frame = requestAnimationFrame(tick);
  }

  ended() {
    this.stopped();
  }

  stop() {
    this.synth.stop();
    this.stopped();
  }

  stopped() {
    cancelAnimationFrame(this.frame);
    this.playing = null;
    this.ui.stop.disabled = true;
    hook.player = { playing: null, notes: 0, seconds: 0 };
    this.redraw();
  }

  // A, B and the path between them

  keep(key) {
    this.kept[key] = this.current;
    this.ui.keptNote[key].textContent = this.current.label;
    this.ui.kept[key].parentElement.classList.remove("empty");
    this.drawMini(this.ui.kept[key], this.current.notes);
    this.ui.interpolate.disabled = !(this.kept.A && this.kept.B);
  }

  async interpolate(steps) {
    const { A, B } = this.kept;
    if (!A || !B) throw new Error("keep two melodies as A and B first");
    if (!Number.isInteger(steps) || steps < 2 || steps > 32) throw new Error(`steps must be a whole number from 2 to 32, not ${steps}`);
    const codes = slerpPath(A.z, B.z, steps);
    const tokens = await this.decoder.run(codes, new Array(steps).fill(0)); // argmax
    this.stop();
    this.path = codes.map((z, k) => ({ ...this.melodyOf(z, tokens[k], ""), t: k / (steps - 1) }));
    this.path.forEach((p, k) => (p.label = k === 0 ? "A (argmax)" : k === steps - 1 ? "B (argmax)" : `path point ${k + 1} of ${steps}, t = ${fmt(p.t)}`));
    this.renderPath();
    this.select(0);
    return tokens;
  }

  renderPath() {
    const box = this.ui.pathBox;
    box.replaceChildren();
    this.thumbs = [];
    const range = pitchRange(this.path.map((p) => p.notes), 15, this.limits());
    this.path.forEach((point, k) => {
      const item = document.createElement("button");
      item.type = "button";
      item.className = "path-item";
      item.setAttribute("aria-label", point.label);
      const canvas = document.createElement("canvas");
      const caption = document.createElement("span");
      caption.textContent = k === 0 ? "A" : k === this.path.length - 1 ? "B" : `t = ${fmt(point.t)}`;
      item.append(canvas, caption);
      item.addEventListener("click", () => {
        this.stop();
        this.select(k);
      });
      box.append(item);
      this.thumbs.push([canvas, point.notes, range]);
      requestAnimationFrame(() => this.drawMini(canvas, point.notes, range));
    });
    this.ui.pathCard.classList.add("has-path");
    this.ui.playPath.disabled = false;
    this.ui.downloadPath.disabled = false;
  }

  select(index, show = true) {
    this.selected = index;
    if (show || this.current !== this.path[index]) this.show(this.path[index]);
    this.markSelected();
  }

  markSelected() {
    [...this.ui.pathBox.children].forEach((item, k) => item.classList.toggle("selected", k === this.selected));
  }

  // downloads

  download(bytes, file) {
    const url = URL.createObjectURL(new Blob([bytes], { type: "audio/midi" }));
    const link = document.createElement("a");
    link.href = url;
    link.download = file;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }

  bind() {
    const ui = this.ui;
    const guard = (action) => () => Promise.resolve().then(action).catch(showError);
    ui.temperature.addEventListener("input", () => (ui.temperatureValue.textContent = this.temperature().toFixed(2)));
    ui.sample.addEventListener("click", () => {
      const started = performance.now();
      ui.sample.disabled = true;
      this.sample(this.temperature(), randomSeed(), started)
        .catch(showError)
        .finally(() => (ui.sample.disabled = false));
    });
    ui.play.addEventListener("click", guard(() => this.play("melody")));
    ui.stop.addEventListener("click", guard(() => this.stop()));
    ui.download.addEventListener("click", guard(() => this.download(melodyMidi(this.current.tokens, this.decoding), "melody.mid")));
    ui.keepA.addEventListener("click", guard(() => this.keep("A")));
    ui.keepB.addEventListener("click", guard(() => this.keep("B")));
    ui.interpolate.addEventListener("click", guard(() => this.interpolate(Number(ui.steps.value))));
    ui.playPath.addEventListener("click", guard(() => this.play("path")));
    ui.downloadPath.addEventListener("click", guard(() => this.download(pathMidi(this.path.map((p) => p.tokens), this.decoding), "melody-path.mid")));
  }
}

/** Codes, temperatures and noise from the hook's arguments, checked. */
function hookInputs(decoder, { z, temperature = 0, noise = null }) {
  const codes = Array.isArray(z?.[0]) || ArrayBuffer.isView(z?.[0]) ? Array.from(z) : [z];
  if (!codes.length || !codes.every((c) => c?.length === decoder.size && Array.from(c).every(Number.isFinite))) {
    throw new Error(`decode takes z: a code of ${decoder.size} finite numbers, or a list of them`);
  }
  const temperatures = Array.isArray(temperature) ? temperature : new Array(codes.length).fill(temperature);
  if (temperatures.length !== codes.length || !temperatures.every((t) => Number.isFinite(t) && t >= 0)) {
    throw new Error("decode takes temperature: a number ≥ 0, or one per code");
  }
  let flat = null;
  if (noise !== null) {
    flat = Float32Array.from(Array.isArray(noise) ? noise.flat(Infinity) : noise);
    if (flat.length !== codes.length * decoder.steps * decoder.classes) {
      throw new Error(`decode takes noise: ${decoder.steps} × ${decoder.classes} numbers per code (or null: zeros)`);
    }
  }
  return [codes, temperatures, flat];
}

/** Open the view: sample a first melody. */
export async function open(manifest) {
  const session = await openSession(manifest, "decoder");
  const decoder = new MelodyDecoder(session, manifest);
  const ui = await build(manifest, decoder.roles.temperature.sampling);
  const view = new MelodyView(manifest, decoder, ui);
  Object.assign(hook, {
    lastSampleMs: null,
    noteColor: NOTE_COLOR,
    canvas: view.ui.roll,
    player: { playing: null, notes: 0, seconds: 0 },
    decode: async (args) => decoder.run(...hookInputs(decoder, args ?? {})),
    sample: async ({ temperature = view.temperature(), seed = randomSeed() } = {}) => {
      view.ui.temperature.value = String(temperature);
      view.ui.temperatureValue.textContent = Number(temperature).toFixed(2);
      return view.sample(temperature, seed);
    },
    midiBytes: (tokens) => Array.from(Array.isArray(tokens[0]) ? pathMidi(tokens, manifest.decoding) : melodyMidi(tokens, manifest.decoding)),
    keep: (key) => view.keep(key === "B" ? "B" : "A"),
    interpolate: (steps) => view.interpolate(steps),
    select: (index) => view.select(index),
    cell: (step, pitch) => {
      const at = view.geometry;
      return { x: Math.floor(at.x(step + 0.5)), y: Math.floor(at.y(pitch) + at.rowHeight / 2) };
    },
  });
  Object.defineProperties(hook, {
    tokens: { get: () => (view.current ? [...view.current.tokens] : null), configurable: true },
    z: { get: () => (view.current ? Array.from(view.current.z) : null), configurable: true },
    notes: { get: () => (view.current ? view.current.notes.map((n) => ({ ...n })) : null), configurable: true },
    path: { get: () => ({ codes: view.path.map((p) => Array.from(p.z)), tokens: view.path.map((p) => [...p.tokens]) }), configurable: true },
  });
  view.ui.root.hidden = false;
  await view.sample(view.temperature(), randomSeed());
}

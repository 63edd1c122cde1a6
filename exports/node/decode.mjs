#!/usr/bin/env node
// Decode aezoo latent codes with an export's decoder, in onnxruntime-node (CPU).
//
//   node decode.mjs EXPORT_DIR CODES.json [--out DIR] [--json] [--temperature T] [--seed S]
//
// EXPORT_DIR is an `aezoo export` folder (aezoo-export.json beside the .onnx files). CODES.json is
// a JSON array of codes, each a (nested) array of numbers shaped like the decoder's first input
// without its batch axis: [[0.5, -1.2], [0, 0]] for a 2-d VAE. All codes are decoded as one batch.
//
// --out DIR   writes one PNG per code (code-0.png, code-1.png, ...) for an image decoder (output
//             [batch, C, H, W] with C = 1 or 3, scaled from the output's manifest `range`,
//             default [0, 1]); outputs that are not images go to DIR/outputs.json as
//             {name: nested array with the batch axis first}.
// --json      prints {"outputs": {name: {"dims": [...], "data": nested array}}, "files": [...]}
//             on stdout (for tests and pipes).
//
// Melody decoders (the manifest's `decoding.kind` is "melody": musicvae) take a code, a
// temperature and Gumbel noise per melody. By default each code is decoded by argmax (temperature
// 0, zero noise); --temperature T --seed S samples instead, with noise drawn by the manifest's
// `noise` rule from seed S (the same numbers the page draws for that seed; --seed alone samples at
// the manifest's temperature, 1; --temperature alone picks a seed and reports it). --out DIR
// writes DIR/melody-0.mid, ... (Standard MIDI Files, as Python's aezoo_musicvae.midi.write_melody
// writes them, by ../web/aezoo_web/midi.js); --json adds "melodies": [{"tokens", "notes"}], the
// "temperature" and "seed", and the "noise" fed when sampling.
//
// Before loading the decoder its sha256 is checked against the manifest. Anything wrong with the
// arguments, the folder or the codes (missing file, sha256 mismatch, wrong shape) is one line on
// stderr and exit status 2; a failure inside onnxruntime is one line and exit status 1.

import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { deflateSync } from "node:zlib";

import { melodyMidi, melodyProblem, tokensToNotes } from "../web/aezoo_web/midi.js";
import { gumbelNoise, gumbelProblem, isSeed, randomSeed, streams } from "../web/aezoo_web/sampling.js";

const MANIFEST = "aezoo-export.json";
const USAGE = "usage: node decode.mjs EXPORT_DIR CODES.json [--out DIR] [--json] [--temperature T] [--seed S]";

class UsageError extends Error {}

function fail(message) {
  throw new UsageError(message);
}

export function parseArgs(argv) {
  const options = { exportDir: null, codes: null, out: null, json: false, temperature: null, seed: null };
  const value = (i, what) => {
    if (i + 1 >= argv.length) fail(`${argv[i]} needs ${what}`);
    return argv[i + 1];
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--out") options.out = value(i++, "a folder");
    else if (arg.startsWith("--out=")) options.out = arg.slice(6);
    else if (arg === "--json") options.json = true;
    else if (arg === "--temperature") options.temperature = temperatureArg(value(i++, "a number (0 is the argmax)"));
    else if (arg.startsWith("--temperature=")) options.temperature = temperatureArg(arg.slice(14));
    else if (arg === "--seed") options.seed = seedArg(value(i++, "a whole number"));
    else if (arg.startsWith("--seed=")) options.seed = seedArg(arg.slice(7));
    else if (arg === "-h" || arg === "--help") {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    } else if (arg.startsWith("-")) fail(`unknown option ${arg}; ${USAGE}`);
    else if (options.exportDir === null) options.exportDir = arg;
    else if (options.codes === null) options.codes = arg;
    else fail(`unexpected argument ${arg}; ${USAGE}`);
  }
  if (options.exportDir === null || options.codes === null) fail(USAGE);
  if (!options.out && !options.json) fail(`give --out DIR, --json or both; ${USAGE}`);
  return options;
}

function temperatureArg(text) {
  const t = Number(text);
  if (text.trim() === "" || !Number.isFinite(t) || t < 0) fail(`--temperature must be a number ≥ 0 (0 is the argmax), got ${text}`);
  return t;
}

function seedArg(text) {
  const s = Number(text);
  if (!/^\d+$/.test(text) || !isSeed(s)) fail(`--seed must be a whole number from 0 to 4294967295, got ${text}`);
  return s;
}

function readJson(file, what) {
  if (!existsSync(file)) fail(`${what} ${file} is missing`);
  try {
    return JSON.parse(readFileSync(file, "utf8"));
  } catch (error) {
    fail(`${what} ${file} is not valid JSON (${error.message})`);
  }
}

export function readManifest(exportDir) {
  if (!existsSync(exportDir)) fail(`export folder ${exportDir} is missing`);
  const manifest = readJson(path.join(exportDir, MANIFEST), "manifest");
  if (typeof manifest.format !== "string" || !manifest.format.startsWith("aezoo-export/")) {
    fail(`${path.join(exportDir, MANIFEST)} is not an aezoo export manifest (format ${manifest.format})`);
  }
  const decoder = manifest.models && manifest.models.decoder;
  if (!decoder || !decoder.file) fail(`${path.join(exportDir, MANIFEST)} lists no decoder`);
  return manifest;
}

/** The file's bytes, once its sha256 matches the manifest's entry. */
export function checkedBytes(exportDir, entry) {
  const file = path.join(exportDir, entry.file);
  if (!existsSync(file)) fail(`${file} is missing (the manifest lists it)`);
  const bytes = readFileSync(file);
  const digest = createHash("sha256").update(bytes).digest("hex");
  if (digest !== entry.sha256) {
    fail(`${file} does not match the manifest's sha256 (${digest.slice(0, 12)}… != ${String(entry.sha256).slice(0, 12)}…): it was modified or swapped`);
  }
  return bytes;
}

function shapeOf(value, where) {
  if (!Array.isArray(value)) {
    if (typeof value !== "number" || !Number.isFinite(value)) fail(`${where} is ${JSON.stringify(value)}, not a finite number`);
    return [];
  }
  if (value.length === 0) fail(`${where} is an empty array`);
  const inner = shapeOf(value[0], `${where}[0]`);
  for (let i = 1; i < value.length; i++) {
    const other = shapeOf(value[i], `${where}[${i}]`);
    if (other.join(",") !== inner.join(",")) fail(`${where} is ragged: [${i}] has shape [${other}], [0] has [${inner}]`);
  }
  return [value.length, ...inner];
}

/** The codes as one batch: {dims, data} checked against the decoder input's manifest shape. */
export function batchCodes(codes, spec) {
  if (!Array.isArray(codes) || codes.length === 0) fail("the codes file must hold a non-empty JSON array of codes");
  const want = spec.shape.slice(1); // without the batch axis
  let first = null;
  codes.forEach((code, i) => {
    const shape = shapeOf(code, `code ${i}`);
    const fits = shape.length === want.length && want.every((d, k) => typeof d !== "number" || d === shape[k]);
    if (!fits) {
      const named = want.map((d) => (typeof d === "number" ? d : JSON.stringify(d))).join(", ");
      fail(`code ${i} has shape [${shape.join(", ")}]; the decoder's input ${JSON.stringify(spec.name)} wants [${named}] per code`);
    }
    if (first && shape.join(",") !== first.join(",")) fail(`code ${i} has shape [${shape}], code 0 [${first}]: all codes must match`);
    first = first || shape;
  });
  const dims = [codes.length, ...first];
  return { dims, data: codes.flat(Infinity) };
}

function tensorData(type, values) {
  switch (type) {
    case "float32":
      return Float32Array.from(values);
    case "float64":
      return Float64Array.from(values);
    case "int64":
      return BigInt64Array.from(values, (v) => BigInt(Math.round(v)));
    case "int32":
      return Int32Array.from(values, Math.round);
    default:
      fail(`the decoder's input has dtype ${type}; decode.mjs feeds float32, float64, int32 or int64`);
  }
}

function nest(flat, dims) {
  if (dims.length === 0) return flat[0];
  if (dims.length === 1) return Array.from(flat);
  const step = dims.slice(1).reduce((a, b) => a * b, 1);
  const out = [];
  for (let i = 0; i < dims[0]; i++) out.push(nest(flat.slice(i * step, (i + 1) * step), dims.slice(1)));
  return out;
}

function plain(tensor) {
  const data = Array.from(tensor.data, (v) => (typeof v === "bigint" ? Number(v) : v));
  return { dims: Array.from(tensor.dims), data };
}

function isImage(spec, dims, type) {
  const channels = dims[1];
  return dims.length === 4 && (channels === 1 || channels === 3) && type.startsWith("float") && (!spec || spec.dtype !== "int64");
}

// -- PNG, written by hand: 8-bit grayscale or RGB, one IDAT, no filtering ---------------------------

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(bytes) {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, "ascii");
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

/** pixels: Uint8Array of height × width × channels (1 gray, 3 RGB). */
export function encodePng(width, height, channels, pixels) {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = channels === 3 ? 2 : 0; // colour type: RGB or grayscale
  const stride = width * channels;
  const raw = Buffer.alloc((stride + 1) * height);
  for (let y = 0; y < height; y++) {
    raw[y * (stride + 1)] = 0; // filter: none
    raw.set(pixels.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);
  }
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([signature, chunk("IHDR", header), chunk("IDAT", deflateSync(raw)), chunk("IEND", Buffer.alloc(0))]);
}

/** Example `index` of a [batch, C, H, W] output as 8-bit pixels, (v - lo) / (hi - lo) · 255 rounded. */
export function toPixels(data, dims, index, range) {
  const [, channels, height, width] = dims;
  const [lo, hi] = range || [0, 1];
  const plane = height * width;
  const base = index * channels * plane;
  const pixels = new Uint8Array(plane * channels);
  for (let c = 0; c < channels; c++) {
    for (let p = 0; p < plane; p++) {
      const v = (Number(data[base + c * plane + p]) - lo) / (hi - lo);
      const clamped = Number.isFinite(v) ? Math.min(1, Math.max(0, v)) : 0;
      pixels[p * channels + c] = Math.round(clamped * 255);
    }
  }
  return pixels;
}

// -- the program ------------------------------------------------------------------------------------

/** The melody decoder's inputs by role: `{code, temperature, noise}` (the manifest's specs). */
function melodyInputs(manifest) {
  const problem = melodyProblem(manifest.decoding);
  if (problem) fail(`${MANIFEST}: ${problem}`);
  const inputs = manifest.models.decoder.inputs || [];
  const noise = inputs.find((s) => s.sampling && s.sampling.kind === "gumbel") || inputs.find((s) => s.name === "noise");
  const temperature = inputs.find((s) => s.name === "temperature");
  const code = inputs.find((s) => s !== noise && s !== temperature);
  if (inputs.length !== 3 || !code || !noise || !temperature) {
    fail(`the melody decoder's inputs (${inputs.map((s) => s.name).join(", ")}) are not a code, "temperature" and "noise"`);
  }
  return { code, temperature, noise };
}

/** Temperature and noise for `n` melodies: argmax unless a temperature or seed is given. */
function melodySampling(options, roles, n) {
  const rule = roles.temperature.sampling || {};
  const sampled = options.seed !== null || (options.temperature !== null && options.temperature > 0);
  const temperature = options.temperature !== null ? options.temperature : sampled ? (rule.value ?? 1) : 0;
  if (rule.min !== undefined && temperature < rule.min) fail(`--temperature must be at least ${rule.min}, got ${temperature}`);
  const dims = [n, ...roles.noise.shape.slice(1)];
  if (!dims.every((d) => Number.isInteger(d) && d > 0)) fail(`the decoder's noise input has shape [${roles.noise.shape}], not [batch, steps, classes]`);
  const count = dims.reduce((a, b) => a * b, 1);
  if (!sampled) return { temperature, seed: null, noise: new Float32Array(count), dims };
  const problem = gumbelProblem(roles.noise.sampling);
  if (problem) fail(`cannot sample: ${problem} (an export from an older aezoo? export it again)`);
  const seed = options.seed !== null ? options.seed : randomSeed();
  return { temperature, seed, noise: gumbelNoise(roles.noise.sampling, count, streams(seed).noise), dims };
}

export async function decode(options) {
  const manifest = readManifest(options.exportDir);
  const entry = manifest.models.decoder;
  const inputs = entry.inputs || [];
  const melody = manifest.decoding && manifest.decoding.kind === "melody";
  if (!melody && (options.temperature !== null || options.seed !== null)) {
    fail(`--temperature and --seed are for melody decoders; this export's decoding is ${JSON.stringify(manifest.decoding?.kind ?? "not given")}`);
  }
  const roles = melody ? melodyInputs(manifest) : null;
  if (!melody && inputs.length !== 1) {
    fail(`the decoder takes ${inputs.length} inputs (${inputs.map((s) => s.name).join(", ")}); decode.mjs feeds one code per example (or a melody decoder's code, temperature and noise)`);
  }
  const codeSpec = melody ? roles.code : inputs[0];
  const codes = readJson(options.codes, "codes file");
  const batch = batchCodes(codes, codeSpec);
  const sampling = melody ? melodySampling(options, roles, batch.dims[0]) : null;
  const bytes = checkedBytes(options.exportDir, entry); // before onnxruntime sees the file
  const ort = await import("onnxruntime-node");
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ["cpu"], logSeverityLevel: 3 });
  const type = codeSpec.dtype || "float32";
  const feeds = { [codeSpec.name]: new ort.Tensor(type, tensorData(type, batch.data), batch.dims) };
  if (melody) {
    const n = batch.dims[0];
    feeds[roles.temperature.name] = new ort.Tensor("float32", new Float32Array(n).fill(sampling.temperature), [n]);
    feeds[roles.noise.name] = new ort.Tensor("float32", sampling.noise, sampling.dims);
  }
  const results = await session.run(feeds);
  const specs = Object.fromEntries((entry.outputs || []).map((s) => [s.name, s]));
  const outputs = {};
  const files = [];
  const others = {};
  const names = session.outputNames;
  for (const name of names) {
    const value = plain(results[name]);
    outputs[name] = { dims: value.dims, data: nest(value.data, value.dims) };
  }
  if (options.out) mkdirSync(options.out, { recursive: true });
  if (melody) return writeMelodies(manifest.decoding, outputs, sampling, options, files);
  const images = names.filter((name) => isImage(specs[name], results[name].dims, results[name].type));
  for (const name of names) {
    if (!options.out) continue;
    const tensor = results[name];
    const dims = outputs[name].dims;
    if (images.includes(name)) {
      const [, channels, height, width] = dims;
      const range = (specs[name] && specs[name].range) || [0, 1];
      for (let i = 0; i < dims[0]; i++) {
        const png = encodePng(width, height, channels, toPixels(tensor.data, dims, i, range));
        const file = path.join(options.out, images.length === 1 ? `code-${i}.png` : `code-${i}-${name}.png`);
        writeFileSync(file, png);
        files.push(file);
      }
    } else {
      others[name] = outputs[name].data;
    }
  }
  if (options.out && Object.keys(others).length) {
    const file = path.join(options.out, "outputs.json");
    writeFileSync(file, `${JSON.stringify(others)}\n`);
    files.push(file);
  }
  return { outputs, files };
}

/** One MIDI file per melody (DIR/melody-0.mid, ...), and what --json adds for melodies. */
function writeMelodies(decoding, outputs, sampling, options, files) {
  const name = decoding.output || "tokens";
  if (!outputs[name]) fail(`the decoder has no output ${JSON.stringify(name)} (the manifest's decoding.output)`);
  const melodies = outputs[name].data.map((tokens) => ({ tokens, notes: tokensToNotes(tokens, decoding) }));
  if (options.out) {
    melodies.forEach((melody, i) => {
      const file = path.join(options.out, `melody-${i}.mid`);
      writeFileSync(file, melodyMidi(melody.tokens, decoding));
      files.push(file);
    });
  }
  const result = { outputs, files, melodies, temperature: sampling.temperature, seed: sampling.seed };
  if (sampling.seed !== null) result.noise = { dims: sampling.dims, data: nest(Array.from(sampling.noise), sampling.dims) };
  return result;
}

async function main() {
  try {
    const options = parseArgs(process.argv.slice(2));
    const result = await decode(options);
    if (options.json) process.stdout.write(`${JSON.stringify(result)}\n`);
    else for (const file of result.files) process.stdout.write(`${file}\n`);
    if (result.seed !== undefined && result.seed !== null && options.seed === null) {
      process.stderr.write(`decode.mjs: sampled with --seed ${result.seed} (give it to draw the same noise again)\n`);
    }
  } catch (error) {
    const line = String(error && error.message ? error.message : error).split("\n")[0];
    process.stderr.write(`decode.mjs: ${line}\n`);
    process.exit(error instanceof UsageError ? 2 : 1);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();

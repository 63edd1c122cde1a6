// What every view of aezoo's page shares: the testing hook, messages, fetching, onnxruntime-web
// sessions, and drawing planar image tensors on a canvas.

import * as ort from "./ort/ort.wasm.min.mjs";

export { ort };

export const MANIFEST_FILE = "aezoo-export.json";

export const $ = (id) => document.getElementById(id);

/** The testing hook on `window.aezoo`; each view adds its own methods (see README.md). */
export const hook = {
  ready: null,
  manifest: null,
  view: null,
  supported: null,
};
window.aezoo = hook;

export function gaussian() {
  let u = 0;
  while (u === 0) u = Math.random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * Math.random());
}

export function fmt(x, digits = 2) {
  const text = Number(x).toFixed(digits);
  return (digits > 0 ? text.replace(/\.?0+$/, "") : text) || "0";
}


export function showMessage(text, kind) {
  const box = $("message");
  box.textContent = text;
  box.className = `message ${kind}`;
  box.hidden = false;
}

export function showError(error) {
  console.error(error);
  showMessage(`Error: ${error?.message ?? error}`, "error");
}

export async function fetchOk(url, what) {
  const response = await fetch(url, { cache: "no-store" });
  if (!response.ok) throw new Error(`could not fetch ${what} (${url}): HTTP ${response.status}`);
  return response;
}

/** An onnxruntime-web session (wasm, one thread) for the manifest's part `key`, fetched from the server. */
export async function openSession(manifest, key) {
  ort.env.wasm.wasmPaths = new URL("ort/", location.href).href; // absolute: no CDN, no guessing
  ort.env.wasm.numThreads = 1; // no cross-origin isolation here, so no shared memory
  ort.env.wasm.proxy = false;
  ort.env.logLevel = "error";
  const entry = manifest.models[key];
  const bytes = await (await fetchOk(entry.file, `the ${key}`)).arrayBuffer();
  return ort.InferenceSession.create(new Uint8Array(bytes), {
    executionProviders: ["wasm"],
    graphOptimizationLevel: "all",
  });
}

/** Pixels of image `index` of `data` (planar [C, H, W] floats in `range`) as RGBA bytes. */
export function toImageData(data, index, [channels, height, width], [low, high]) {
  const pixels = height * width;
  const image = new ImageData(width, height);
  const rgba = image.data;
  const offset = index * channels * pixels;
  const scale = high > low ? 255 / (high - low) : 255;
  for (let p = 0; p < pixels; p++) {
    for (let c = 0; c < 3; c++) {
      const value = data[offset + (channels === 1 ? 0 : c) * pixels + p];
      rgba[4 * p + c] = Math.round(Math.min(255, Math.max(0, (value - low) * scale)));
    }
    rgba[4 * p + 3] = 255;
  }
  return image;
}


// The upscale view, for super-resolution exports (`decoding.kind` "image" with a `scale`): a person
// drops an image (or picks one), encoder.onnx then decoder.onnx upscale it, and the page shows the
// model's result beside bicubic upscaling under a draggable divider, with a PNG download.
// A luminance model gets Y through it and Cb/Cr by bicubic (`decoding.color_rebuild`, BT.601);
// a grey picture (R = G = B everywhere) goes through the model as it is.
//
// Hook methods: `upscale({width, height, rgba})` → `{model, bicubic, mode, ms}` (each image
// `{width, height, rgba}`; also drawn on the page), `lastUpscaleMs` (pixels in to the model's pixels
// out: encoder, decoder and colour), `canvas` (the model's result), `bicubicCanvas`, `maxPixels`.

import { $, hook, openSession, ort, showError, showMessage } from "./common.js";
import { bicubic, bicubicImage, isGrey, rgbToYcbcr, toPlanes, toRgba, ycbcrToRgb } from "./pixels.js";

/** The largest input this page takes, in pixels; see README.md for why. */
export const MAX_PIXELS = 1_000_000;
const ZOOMS = [
  ["fit", "Fit"],
  ["1", "100 %"],
  ["2", "200 %"],
  ["4", "400 %"],
];

export const name = "upscale";

/** Why this view cannot run the export, or null when it can. */
export function unsupported(manifest) {
  const decoding = manifest.decoding;
  if (decoding?.kind !== "image" || decoding.scale === undefined) {
    return "it is not an upscaler (its manifest's decoding gives no image scale)";
  }
  const { encoder, decoder } = manifest.models;
  if (!Number.isInteger(decoding.scale) || decoding.scale < 1) {
    return `its scale ${decoding.scale} is not a whole number`;
  }
  if (!encoder) return "it upscales, but the export has no encoder to run first";
  if (encoder.outputs.length !== 1 || decoder.inputs.length !== 1) {
    return "its encoder and decoder do not chain one tensor from one to the other";
  }
  if (decoding.layout && decoding.layout !== "NCHW") return `its images are ${decoding.layout}, not NCHW`;
  if (![1, 3].includes(decoding.channels)) return `its images have ${decoding.channels} channels (1 or 3 here)`;
  return null;
}

/** encoder.onnx then decoder.onnx, one image at a time. */
class Upscaler {
  constructor(manifest, encoder, decoder) {
    const decoding = manifest.decoding;
    this.encoder = encoder;
    this.decoder = decoder;
    this.scale = decoding.scale;
    this.channels = decoding.channels;
    this.range = decoding.range ?? [0, 1];
    this.rebuild = this.channels === 1 ? (decoding.color_rebuild ?? null) : null; // colour around a luminance model
    const parts = manifest.models;
    this.input = decoding.input ?? parts.encoder.inputs[0].name;
    this.code = [parts.encoder.outputs[0].name, parts.decoder.inputs[0].name];
    this.output = decoding.output ?? parts.decoder.outputs[0].name;
    this.queue = Promise.resolve();
  }

  /** `planes` (this.channels planes of h × w values in [0, 1]) → the model's planes, values in [0, 1]. */
  async run(planes, width, height) {
    const data = new Float32Array(planes.length * width * height);
    planes.forEach((plane, c) => data.set(plane, c * width * height));
    const low = new ort.Tensor("float32", data, [1, planes.length, height, width]);
    const encoded = await this.encoder.run({ [this.input]: low });
    const decoded = await this.decoder.run({ [this.code[1]]: encoded[this.code[0]] });
    const out = decoded[this.output].data;
    const [lo, hi] = this.range;
    const size = width * this.scale * height * this.scale;
    return planes.map((_, c) => {
      const plane = out.subarray(c * size, (c + 1) * size);
      return lo === 0 && hi === 1 ? plane : plane.map((v) => (v - lo) / (hi - lo));
    });
  }

  /** `{width, height, rgba}` → the model's result `{width, height, rgba, mode}`; one at a time. */
  upscale(image) {
    const job = this.queue.then(() => this.pipeline(image));
    this.queue = job.catch(() => {});
    return job;
  }

  async pipeline({ width, height, rgba }) {
    const size = { width: width * this.scale, height: height * this.scale };
    if (this.channels === 3) {
      return { ...size, rgba: toRgba(await this.run(toPlanes(rgba, 3), width, height)), mode: "rgb" };
    }
    if (isGrey(rgba)) {
      return { ...size, rgba: toRgba(await this.run(toPlanes(rgba, 1), width, height)), mode: "grey" };
    }
    if (!this.rebuild) {
      throw new Error("this model upscales grey images, and its manifest gives no color_rebuild for colour ones");
    }
    const [y, cb, cr] = rgbToYcbcr(toPlanes(rgba, 3), this.rebuild.rgb_to_ycbcr);
    const [luma] = await this.run([y], width, height);
    const chroma = [cb, cr].map((plane) => bicubic(plane, width, height, this.scale));
    return { ...size, rgba: toRgba(ycbcrToRgb([luma, ...chroma], this.rebuild.ycbcr_to_rgb)), mode: "colour" };
  }
}

/** One clear line when an image is too large for this page, else null. */
export function tooLarge(width, height, label = "the image") {
  if (width * height <= MAX_PIXELS) return null;
  return (
    `${label} is ${width}×${height}, ${count(width * height)} pixels; this page upscales at most ` +
    `${count(MAX_PIXELS)} (such as 1000×1000), as larger ones take minutes and gigabytes in a browser tab: ` +
    "crop or shrink it, or run `aezoo upscale` on it"
  );
}

const count = (n) => n.toLocaleString("en-US");
const ms = (value) => `${count(Math.round(value))} ms`;

const MODES = {
  colour: "colour: Y through the model, Cb and Cr bicubic (BT.601)",
  grey: "grey: through the model as it is",
  rgb: "RGB through the model",
};

class View {
  constructor(manifest, upscaler) {
    this.upscaler = upscaler;
    this.model = $("upscale-model");
    this.bicubic = $("upscale-bicubic");
    this.stage = $("compare");
    this.divider = $("divider");
    this.split = 0.5;
    this.zoom = "fit";
    this.fileName = "image";
    $("upscale-scale").textContent = String(upscaler.scale);
    $("drop-note").textContent =
      `PNG or JPEG, up to ${count(MAX_PIXELS)} pixels (1000×1000); ×${upscaler.scale} out. ` +
      "It stays in this tab: nothing is uploaded.";
    this.bindInput();
    this.bindDivider();
    this.bindZoom();
    $("download").addEventListener("click", () => this.download());
    new ResizeObserver(() => this.layout()).observe($("compare-frame"));
  }

  bindInput() {
    const input = $("upscale-file");
    input.addEventListener("change", () => {
      if (input.files[0]) this.openFile(input.files[0]);
      input.value = ""; // the same file again fires change again
    });
    const drop = $("drop");
    for (const type of ["dragenter", "dragover"]) {
      document.addEventListener(type, (event) => {
        event.preventDefault(); // anywhere on the page: dropping a file does not navigate away
        drop.classList.add("over");
      });
    }
    for (const type of ["dragleave", "drop"]) {
      document.addEventListener(type, (event) => {
        event.preventDefault();
        if (type === "drop" || event.relatedTarget === null) drop.classList.remove("over");
      });
    }
    document.addEventListener("drop", (event) => {
      const file = event.dataTransfer?.files[0];
      if (file) this.openFile(file);
    });
  }

  /** A file from the input or a drop: decoded by the browser, refused when too large, upscaled. */
  async openFile(file) {
    try {
      this.busy(`reading ${file.name}…`);
      let bitmap;
      try {
        bitmap = await createImageBitmap(file, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
      } catch {
        throw new Error(`${file.name} is not an image this browser can read; give a PNG or JPEG`);
      }
      const why = tooLarge(bitmap.width, bitmap.height, file.name);
      if (why) {
        bitmap.close();
        throw new Error(why);
      }
      const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
      const context = canvas.getContext("2d", { willReadFrequently: true });
      context.drawImage(bitmap, 0, 0);
      bitmap.close();
      const { data } = context.getImageData(0, 0, canvas.width, canvas.height);
      this.fileName = file.name.replace(/\.[^.]*$/, "") || "image";
      await this.show({ width: canvas.width, height: canvas.height, rgba: data });
    } catch (error) {
      this.fail(error);
    }
  }

  busy(text) {
    $("upscale-status").textContent = text;
    $("upscaler-card").classList.add("busy");
  }

  fail(error) {
    $("upscaler-card").classList.remove("busy");
    $("upscale-status").textContent = "";
    showError(error);
  }

  /** Upscale `image` both ways and draw the two results; what the hook returns. */
  async show(image) {
    $("message").hidden = true;
    this.busy(`upscaling ${image.width}×${image.height}… (the tab waits for the model)`);
    await new Promise((resolve) => setTimeout(resolve, 30)); // let the status paint: the model blocks the tab
    let model, plain, modelMs, plainMs;
    try {
      const started = performance.now();
      model = await this.upscaler.upscale(image);
      modelMs = performance.now() - started;
      plain = bicubicImage(image, this.upscaler.scale);
      plainMs = performance.now() - started - modelMs;
    } finally {
      $("upscale-status").textContent = "";
      $("upscaler-card").classList.remove("busy");
    }
    hook.lastUpscaleMs = modelMs;
    for (const [canvas, result] of [[this.model, model], [this.bicubic, plain]]) {
      canvas.width = result.width;
      canvas.height = result.height;
      canvas.getContext("2d").putImageData(new ImageData(result.rgba, result.width, result.height), 0, 0);
    }
    $("upscale-timing").textContent = `model ${ms(modelMs)} · bicubic ${ms(plainMs)}`;
    const sizes = `${image.width}×${image.height} → ${model.width}×${model.height}`;
    $("upscale-info").textContent = `${sizes} · ${MODES[model.mode]}`;
    $("upscale-note").textContent =
      "Drag across the picture (or focus the divider and press ← →): bicubic on the left, the model on the right.";
    $("result").hidden = false;
    this.layout();
    return { model, bicubic: plain, mode: model.mode, ms: modelMs };
  }

  // the comparison: two canvases in one frame, the model's clipped to the right of the divider

  bindDivider() {
    const stage = this.stage;
    const move = (event) => {
      const box = stage.getBoundingClientRect();
      this.setSplit((event.clientX - box.left) / box.width);
    };
    stage.addEventListener("pointerdown", (event) => {
      stage.setPointerCapture(event.pointerId);
      stage.classList.add("dragging");
      move(event);
    });
    stage.addEventListener("pointermove", (event) => {
      if (stage.hasPointerCapture(event.pointerId)) move(event);
    });
    const release = (event) => {
      stage.classList.remove("dragging");
      if (stage.hasPointerCapture(event.pointerId)) stage.releasePointerCapture(event.pointerId);
    };
    stage.addEventListener("pointerup", release);
    stage.addEventListener("pointercancel", release);
    this.divider.addEventListener("keydown", (event) => {
      const step = { ArrowLeft: -0.05, ArrowRight: 0.05, Home: -1, End: 1 }[event.key];
      if (step === undefined) return;
      event.preventDefault();
      this.setSplit(this.split + step);
    });
    this.setSplit(this.split);
  }

  setSplit(value) {
    this.split = Math.min(1, Math.max(0, value));
    const percent = `${(this.split * 100).toFixed(2)}%`;
    this.model.style.clipPath = `inset(0 0 0 ${percent})`;
    this.divider.style.left = percent;
    this.divider.setAttribute("aria-valuenow", String(Math.round(this.split * 100)));
  }

  bindZoom() {
    const select = $("zoom");
    for (const [value, label] of ZOOMS) select.add(new Option(label, value));
    select.value = this.zoom;
    select.addEventListener("change", () => {
      this.zoom = select.value;
      this.layout();
    });
  }

  /** Size the stage: fit the frame (up to 4 screen pixels per image pixel), or a fixed zoom. */
  layout() {
    const { width, height } = this.model;
    if (!width || $("result").hidden) return;
    const frame = $("compare-frame");
    const ratio = window.devicePixelRatio || 1;
    let zoom;
    if (this.zoom === "fit") {
      const room = Math.min(frame.clientWidth / width, (window.innerHeight * 0.7) / height);
      zoom = Math.min(4, room);
    } else {
      zoom = Number(this.zoom) / ratio; // 100 %: one image pixel per device pixel
    }
    this.stage.style.width = `${Math.max(1, Math.round(width * zoom))}px`;
    this.stage.style.height = `${Math.max(1, Math.round(height * zoom))}px`;
    this.stage.classList.toggle("pixelated", zoom * ratio >= 1.5);
    frame.classList.toggle("scrolls", this.zoom !== "fit");
  }

  download() {
    this.model.toBlob((blob) => {
      const link = document.createElement("a");
      link.href = URL.createObjectURL(blob);
      link.download = `${this.fileName}-x${this.upscaler.scale}.png`;
      link.click();
      setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
    }, "image/png");
  }
}

/** Open the view: both sessions, the drop zone, and the hook. */
export async function open(manifest) {
  const [encoder, decoder] = await Promise.all([openSession(manifest, "encoder"), openSession(manifest, "decoder")]);
  const view = new View(manifest, new Upscaler(manifest, encoder, decoder));
  $("upscaler").hidden = false;
  hook.canvas = view.model;
  hook.bicubicCanvas = view.bicubic;
  hook.maxPixels = MAX_PIXELS;
  hook.lastUpscaleMs = null;
  hook.upscale = async ({ width, height, rgba }) => {
    if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
      throw new Error("upscale takes {width, height, rgba} with whole, positive width and height");
    }
    if (!rgba || rgba.length !== 4 * width * height) {
      throw new Error(`upscale takes ${4 * width * height} RGBA bytes for ${width}×${height}`);
    }
    const why = tooLarge(width, height);
    if (why) {
      showMessage(`Error: ${why}`, "error");
      throw new Error(why);
    }
    view.fileName = "image";
    try {
      return await view.show({ width, height, rgba: Uint8ClampedArray.from(rgba) });
    } catch (error) {
      view.fail(error);
      throw error;
    }
  };
}

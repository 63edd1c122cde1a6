// The melody view's markup (built here, so index.html stays the same for every view) and its
// stylesheet, melody.css. `build` returns the elements melody.js works with.

import { $ } from "./common.js";

const TEMPERATURE = { min: 0, max: 1.5, step: 0.05 };
const POINTS = 8; // interpolation points, ends included, as `aezoo interpolate`

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "text") node.textContent = value;
    else if (value === true) node.setAttribute(key, "");
    else if (value !== false && value !== null) node.setAttribute(key, String(value));
  }
  node.append(...children);
  return node;
}

function button(id, text, secondary = false, disabled = false) {
  return element("button", { id, type: "button", class: secondary ? "secondary" : null, disabled, text });
}

function stylesheet(file) {
  return new Promise((resolve) => {
    const link = element("link", { rel: "stylesheet", href: file });
    link.addEventListener("load", resolve);
    link.addEventListener("error", resolve); // the page still works, unstyled
    document.head.append(link);
  });
}

/** Build the view's markup (hidden) before the export details; `temperature` is its input's sampling rule. */
export async function build(manifest, temperature) {
  await stylesheet("melody.css");
  const d = manifest.decoding;
  const start = Math.min(TEMPERATURE.max, Math.max(temperature?.min ?? 0, temperature?.value ?? 1));
  const ui = {};
  ui.temperature = element("input", {
    id: "melody-temperature",
    type: "range",
    min: Math.max(TEMPERATURE.min, temperature?.min ?? 0),
    max: TEMPERATURE.max,
    step: TEMPERATURE.step,
    value: start,
    "aria-label": "temperature",
  });
  ui.temperatureValue = element("output", { id: "melody-temperature-value", for: "melody-temperature", text: start.toFixed(2) });
  ui.sample = button("melody-sample", "Sample");
  ui.play = button("melody-play", "▶ Play", true, true);
  ui.stop = button("melody-stop", "■ Stop", true, true);
  ui.download = button("melody-download", "Download MIDI", true, true);
  ui.keepA = button("melody-keep-a", "Keep as A", true, true);
  ui.keepB = button("melody-keep-b", "Keep as B", true, true);
  ui.timing = element("span", { id: "melody-timing", class: "muted small" });
  ui.roll = element("canvas", { id: "melody-roll", class: "roll", "aria-label": "piano roll of the melody" });
  ui.note = element("p", { id: "melody-note", class: "muted small" });

  const temperatureLabel = element(
    "label",
    { class: "temperature" },
    element("span", { text: "Temperature" }),
    ui.temperature,
    ui.temperatureValue,
  );
  const main = element(
    "section",
    { class: "card wide" },
    element("div", { class: "card-head" }, element("h2", { text: "Melody" }), ui.timing),
    element("div", { class: "melody-controls" }, temperatureLabel, ui.sample, ui.play, ui.stop, ui.download),
    ui.roll,
    element("div", { class: "melody-foot" }, ui.note, element("div", { class: "keep" }, ui.keepA, ui.keepB)),
  );

  ui.kept = {};
  ui.keptNote = {};
  const end = (key) => {
    ui.kept[key] = element("canvas", { id: `melody-${key.toLowerCase()}`, "aria-label": `melody ${key}` });
    ui.keptNote[key] = element("span", { class: "muted small", text: `keep a melody as ${key}` });
    return element("figure", { class: "kept empty" }, element("figcaption", { text: key }), ui.kept[key], ui.keptNote[key]);
  };
  ui.steps = element("input", { id: "melody-steps", type: "number", min: 2, max: 32, value: POINTS, "aria-label": "points on the path" });
  ui.interpolate = button("melody-interpolate", "Interpolate", false, true);
  ui.playPath = button("melody-play-path", "▶ Play path", true, true);
  ui.downloadPath = button("melody-download-path", "Download path MIDI", true, true);
  ui.pathBox = element("div", { id: "melody-path", class: "path" });
  const head = element(
    "div",
    { class: "card-head" },
    element("h2", { text: "Interpolate A → B" }),
    element("span", { class: "muted small", text: "spherical path between the two codes, each point decoded by argmax" }),
  );
  const controls = element(
    "div",
    { class: "path-controls" },
    element("label", { class: "points" }, element("span", { text: "points" }), ui.steps),
    ui.interpolate,
    ui.playPath,
    ui.downloadPath,
  );
  ui.pathCard = element(
    "section",
    { class: "card wide melody-path" },
    head,
    element("div", { class: "ends" }, end("A"), controls, end("B")),
    ui.pathBox,
  );

  ui.root = element("div", { id: "melody", class: "melody", hidden: true }, main, ui.pathCard);
  const details = $("details");
  details.parentElement.insertBefore(ui.root, details);
  const bars = `${d.bars} bar${d.bars === 1 ? "" : "s"}`;
  ui.note.textContent = `${bars} of ${d.time_signature.join("/")}`;
  return ui;
}

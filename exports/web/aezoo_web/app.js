// aezoo's page for an export: reads its manifest (aezoo-export.json), says what the model is, and
// opens the first view that can show its decoder, each run by onnxruntime-web (wasm) in the
// browser. Served by `aezoo serve`; no build step.
//
// The testing hook lives on `window.aezoo`: `ready` (a promise of {supported, reason, view}),
// `manifest`, `view` (the view's name), and each view's own methods (README.md lists them).

import { $, MANIFEST_FILE, fetchOk, hook, ort, showError, showMessage } from "./common.js";
import * as codes from "./codes.js";
import * as latent from "./latent.js";
import * as melody from "./melody.js";
import * as upscale from "./upscale.js";

/** The views, most specific first: the first whose `unsupported(manifest)` is null opens. */
const VIEWS = [upscale, melody, codes, latent];

function describe(manifest) {
  const source = manifest.source ?? {};
  const name = source.pretrained ?? manifest.run ?? source.file ?? manifest.architecture;
  document.title = `${name} · aezoo`;
  $("model-name").textContent = name;
  const decoder = manifest.models?.decoder;
  const hp = manifest.hparams ?? {};
  const network = hp.network ? ` (${hp.network})` : "";
  const parts = [`architecture ${manifest.architecture}${network}`];
  const code = decoder?.inputs[0];
  if (code?.classes) parts.push(`a ${code.shape.slice(1).join("×")} grid of codes, each one of ${code.classes}`);
  else if (manifest.latent_size) parts.push(`${manifest.latent_size}-d code`);
  if (manifest.dataset?.name) parts.push(`trained on ${manifest.dataset.name}`);
  if (decoder) parts.push(`decoder ${(decoder.bytes / 1e6).toFixed(2)} MB`);
  $("model-summary").textContent = parts.join(" · ");
  const facts = [
    ["architecture", manifest.architecture],
    ["hyperparameters", Object.entries(hp).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(", ")],
    ["latent shape", JSON.stringify(manifest.latent_shape)],
    ["decoder", decoder ? `${decoder.file}: ${decoder.inputs.map(tensorText).join(", ")} → ${decoder.outputs.map(tensorText).join(", ")}` : "none"],
    ["code sampling", decoder?.inputs[0]?.sampling?.note ?? decoder?.inputs[0]?.sampling?.kind ?? "not given"],
    ["dataset", manifest.dataset ? `${manifest.dataset.name} ${JSON.stringify(manifest.dataset.shape ?? "")}` : "not recorded"],
    ["exported with", Object.entries(manifest.versions ?? {}).map(([k, v]) => `${k} ${v}`).join(", ")],
    ["opset", String(manifest.opset)],
    ["validated", `${manifest.validation?.passed ? "passed" : "FAILED"} (${manifest.validation?.runtime ?? "?"}, atol ${manifest.validation?.atol})`],
  ];
  const list = $("facts");
  for (const [term, text] of facts) {
    const dt = document.createElement("dt");
    dt.textContent = term;
    const dd = document.createElement("dd");
    dd.textContent = text;
    list.append(dt, dd);
  }
  $("details").hidden = false;
}

function tensorText(t) {
  return `${t.name} ${t.dtype}[${t.shape.join(", ")}]`;
}

async function start() {
  $("ort-version").textContent = ort.env.versions?.web ?? "?";
  const manifest = await (await fetchOk(MANIFEST_FILE, "the manifest")).json();
  hook.manifest = manifest;
  describe(manifest);
  if (!manifest.models?.decoder) return refuse("the export has no decoder");
  const reasons = [];
  for (const view of VIEWS) {
    const why = view.unsupported(manifest);
    if (why) {
      reasons.push(why);
      continue;
    }
    hook.view = view.name;
    await view.open(manifest);
    hook.supported = true;
    return { supported: true, view: view.name };
  }
  return refuse(reasons.join("; "));
}

function refuse(why) {
  showMessage(`This export's decoder is not supported yet by this page: ${why}.`, "info");
  hook.supported = false;
  return { supported: false, reason: why };
}

hook.ready = start().catch((error) => {
  showError(error);
  throw error;
});

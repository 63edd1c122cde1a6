// The melody view in a real browser: Debian's chromium, headless, driven by playwright-core.
//
//   node tests/melody.test.mjs URL --cases FILE.json --downloads DIR [--points N] [--screenshot FILE.png]
//
// URL is a running `aezoo serve` of a melody export (musicvae). FILE.json holds {"decode": [{z,
// temperature, noise}, ...], "seeded": {temperature, seed}, "ends": [{temperature, seed}, {…}]}.
// The script decodes each case through window.aezoo.decode, samples through the hook with a seed
// (twice), clicks "Sample" and reads the piano roll's pixels at every note's cells and at empty
// cells, clicks "Download MIDI" (saved as DIR/melody.mid), plays and stops, keeps the two "ends"
// samples as A and B, interpolates N points, downloads the path (DIR/path.mid), plays it, and prints
// one JSON object on stdout. tests/test_web_melody.py runs it and checks everything against
// onnxruntime and pretty_midi in Python. It exits 1 when the page failed to start or logged an
// error. $CHROMIUM overrides /usr/bin/chromium.

import { readFileSync } from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";

function parse(argv) {
  const options = { url: null, cases: null, downloads: null, points: 5, screenshot: null };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--cases") options.cases = JSON.parse(readFileSync(argv[++i], "utf8"));
    else if (argv[i] === "--downloads") options.downloads = argv[++i];
    else if (argv[i] === "--points") options.points = Number(argv[++i]);
    else if (argv[i] === "--screenshot") options.screenshot = argv[++i];
    else if (!options.url) options.url = argv[i];
    else throw new Error(`unexpected argument ${argv[i]}`);
  }
  if (!options.url || !options.cases || !options.downloads) {
    throw new Error("usage: node tests/melody.test.mjs URL --cases FILE.json --downloads DIR [--points N] [--screenshot FILE]");
  }
  return options;
}

/** Pixels of the piano roll at each sounding note's cells, and at cells where nothing sounds. */
async function rollCells(page) {
  return page.evaluate(() => {
    const { canvas, notes } = window.aezoo;
    const g = canvas.getContext("2d");
    const pixel = (step, pitch) => {
      const { x, y } = window.aezoo.cell(step, pitch);
      return Array.from(g.getImageData(x, y, 1, 1).data);
    };
    const noteCells = [];
    const emptyCells = [];
    for (const note of notes) {
      for (let step = note.start; step < note.end; step++) noteCells.push({ step, pitch: note.pitch, rgba: pixel(step, note.pitch) });
      // the row above or below, at the note's onset, when no other note sounds there
      for (const pitch of [note.pitch + 1, note.pitch - 1]) {
        if (!notes.some((n) => n.pitch === pitch && n.start <= note.start && note.start < n.end)) {
          emptyCells.push({ step: note.start, pitch, rgba: pixel(note.start, pitch) });
        }
      }
    }
    return { width: canvas.width, height: canvas.height, noteCells, emptyCells };
  });
}

async function download(page, selector, file) {
  const [event] = await Promise.all([page.waitForEvent("download"), page.click(selector)]);
  await event.saveAs(file);
  return { file, suggested: event.suggestedFilename() };
}

async function playAndStop(page, selector, kind) {
  await page.click(selector);
  await page.waitForFunction((kind) => window.aezoo.player.playing === kind, kind);
  const playing = await page.evaluate(() => ({ ...window.aezoo.player }));
  await page.waitForTimeout(400);
  const stopEnabled = await page.locator("#melody-stop").isEnabled();
  return { playing, stopEnabled };
}

const options = parse(process.argv.slice(2));
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--autoplay-policy=no-user-gesture-required"],
});
const report = { browser: browser.version(), errors: [] };
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 1000 }, acceptDownloads: true });
  page.on("pageerror", (error) => report.errors.push(`page error: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error") report.errors.push(`console: ${message.text()}`);
  });
  page.on("requestfailed", (request) => report.errors.push(`request failed: ${request.url()}`));
  page.on("response", (response) => {
    if (response.status() >= 400) report.errors.push(`HTTP ${response.status()}: ${response.url()}`);
  });
  await page.goto(options.url);
  report.ready = await page.evaluate(() => window.aezoo.ready);
  report.view = await page.evaluate(() => window.aezoo.view);
  if (report.ready.supported) {
    report.decoded = [];
    for (const item of options.cases.decode) report.decoded.push(await page.evaluate((item) => window.aezoo.decode(item), item));

    const seeded = options.cases.seeded;
    report.seeded = await page.evaluate((args) => window.aezoo.sample(args), seeded);
    report.seededAgain = await page.evaluate((args) => window.aezoo.sample(args), seeded);

    // the Sample button, at the temperature set on the slider
    await page.evaluate(() => {
      const slider = document.getElementById("melody-temperature");
      slider.value = "0.8";
      slider.dispatchEvent(new Event("input", { bubbles: true }));
      window.aezoo.lastSampleMs = null;
    });
    await page.click("#melody-sample");
    await page.waitForFunction(() => window.aezoo.lastSampleMs !== null);
    report.clicked = await page.evaluate(() => ({
      tokens: window.aezoo.tokens,
      z: window.aezoo.z,
      notes: window.aezoo.notes,
      lastSampleMs: window.aezoo.lastSampleMs,
      label: document.getElementById("melody-note").textContent,
      temperature: document.getElementById("melody-temperature-value").textContent,
      noteColor: window.aezoo.noteColor,
    }));
    report.clicked.roll = await rollCells(page);
    report.clicked.download = await download(page, "#melody-download", path.join(options.downloads, "melody.mid"));
    report.clicked.hookBytes = await page.evaluate(() => window.aezoo.midiBytes(window.aezoo.tokens));
    report.clicked.play = await playAndStop(page, "#melody-play", "melody");
    await page.click("#melody-stop");
    report.clicked.stopped = await page.evaluate(() => ({ ...window.aezoo.player }));

    // A and B, and the path between them
    const [a, b] = options.cases.ends;
    report.a = await page.evaluate((args) => window.aezoo.sample(args), a);
    await page.click("#melody-keep-a");
    report.b = await page.evaluate((args) => window.aezoo.sample(args), b);
    await page.click("#melody-keep-b");
    await page.fill("#melody-steps", String(options.points));
    await page.click("#melody-interpolate");
    await page.waitForFunction((n) => window.aezoo.path.tokens.length === n, options.points);
    report.path = await page.evaluate(() => window.aezoo.path);
    report.path.items = await page.locator(".path-item").count();
    report.path.download = await download(page, "#melody-download-path", path.join(options.downloads, "path.mid"));
    report.path.hookBytes = await page.evaluate(() => window.aezoo.midiBytes(window.aezoo.path.tokens));
    report.path.play = await playAndStop(page, "#melody-play-path", "path");
    if (options.screenshot) await page.screenshot({ path: options.screenshot, fullPage: true }); // mid-play
    await page.click("#melody-stop");
    await page.locator(".path-item").nth(1).click();
    report.path.selected = await page.evaluate(() => window.aezoo.tokens);
  }
} catch (error) {
  report.errors.push(`script: ${error.message}`);
} finally {
  await browser.close();
}
process.stdout.write(`${JSON.stringify(report)}\n`);
process.exitCode = report.errors.length || !report.ready?.supported ? 1 : 0;

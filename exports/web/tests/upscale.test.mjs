// The upscale view in a real browser: Debian's chromium, headless, driven by playwright-core.
//
//   node tests/upscale.test.mjs URL [--file PATH]... [--hook JSON] [--refused PATH]...
//                                   [--download DIR] [--screenshot FILE.png]
//
// URL is a running `aezoo serve` of a super-resolution export. Each --file goes through the page's
// real file input (as a person picking it); --hook is a JSON file holding a list of
// {width, height, rgba} given to window.aezoo.upscale; each --refused file is one the page must
// refuse (too large, not an image). --download clicks "Download PNG" after the last --file and
// saves the file into DIR. Prints one JSON object on stdout:
// {ready, files: [{name, model, bicubic, lastUpscaleMs, info, timing}], hook: [{model, bicubic, mode, ms}],
//  refused: [{name, message, shown}], download, interaction: {start, end, key, zoomed}, errors};
// each image is {width, height, rgba}.
// tests/test_web_superres.py runs it and compares the pixels with `SuperResolution.upscale`.
// $CHROMIUM overrides /usr/bin/chromium.

import { chromium } from "playwright-core";
import { readFileSync } from "node:fs";
import { basename, join } from "node:path";

function parse(argv) {
  const options = { url: null, files: [], hook: null, refused: [], download: null, screenshot: null };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--file") options.files.push(argv[++i]);
    else if (argv[i] === "--hook") options.hook = JSON.parse(readFileSync(argv[++i], "utf8"));
    else if (argv[i] === "--refused") options.refused.push(argv[++i]);
    else if (argv[i] === "--download") options.download = argv[++i];
    else if (argv[i] === "--screenshot") options.screenshot = argv[++i];
    else if (!options.url) options.url = argv[i];
    else throw new Error(`unexpected argument ${argv[i]}`);
  }
  if (!options.url) throw new Error("usage: node tests/upscale.test.mjs URL [--file PATH]... [--hook JSON]");
  return options;
}

/** Both canvases' pixels, in the page. */
function readCanvases() {
  const read = (canvas) => ({
    width: canvas.width,
    height: canvas.height,
    rgba: Array.from(canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data),
  });
  return { model: read(window.aezoo.canvas), bicubic: read(window.aezoo.bicubicCanvas) };
}

/** Give `path` to the file input; wait until the page shows its result or a message. */
async function pick(page, path) {
  await page.evaluate(() => {
    window.aezoo.lastUpscaleMs = null;
    document.getElementById("message").hidden = true;
  });
  await page.setInputFiles("#upscale-file", path);
  await page.waitForFunction(
    () => window.aezoo.lastUpscaleMs !== null || !document.getElementById("message").hidden,
    null,
    { timeout: 60_000 },
  );
}

const options = parse(process.argv.slice(2));
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const report = { browser: browser.version(), errors: [], files: [], hook: [], refused: [] };
const expected = []; // errors the page is meant to show (the refusals), not failures
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 1000 } });
  page.on("pageerror", (error) => report.errors.push(`page error: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error" && !expected.some((name) => message.text().includes(name))) {
      report.errors.push(`console: ${message.text()}`);
    }
  });
  page.on("requestfailed", (request) => report.errors.push(`request failed: ${request.url()}`));
  page.on("response", (response) => {
    if (response.status() >= 400) report.errors.push(`HTTP ${response.status()}: ${response.url()}`);
  });
  await page.goto(options.url);
  report.ready = await page.evaluate(() => window.aezoo.ready);
  report.view = await page.evaluate(() => window.aezoo.view);
  report.maxPixels = await page.evaluate(() => window.aezoo.maxPixels);

  for (const path of options.files) {
    await pick(page, path);
    const message = await page.locator("#message").isVisible();
    if (message) throw new Error(`${path}: ${await page.locator("#message").textContent()}`);
    report.files.push({
      name: basename(path),
      ...(await page.evaluate(readCanvases)),
      lastUpscaleMs: await page.evaluate(() => window.aezoo.lastUpscaleMs),
      info: await page.locator("#upscale-info").textContent(),
      timing: await page.locator("#upscale-timing").textContent(),
    });
  }

  if (options.download) {
    const [download] = await Promise.all([page.waitForEvent("download"), page.click("#download")]);
    const target = join(options.download, download.suggestedFilename());
    await download.saveAs(target);
    report.download = target;
  }
  if (options.screenshot) await page.screenshot({ path: options.screenshot, fullPage: true });

  if (options.files.length) {
    // drag across the picture from a fifth to four fifths of its width; then 200 % zoom
    const box = await page.locator("#compare").boundingBox();
    const divider = () =>
      page.evaluate(() => Number(document.getElementById("divider").getAttribute("aria-valuenow")));
    await page.mouse.move(box.x + box.width * 0.2, box.y + box.height / 2);
    await page.mouse.down();
    const start = await divider();
    await page.mouse.move(box.x + box.width * 0.8, box.y + box.height / 2, { steps: 8 });
    await page.mouse.up();
    const end = await divider();
    await page.focus("#divider");
    await page.keyboard.press("ArrowLeft");
    const key = await divider();
    await page.selectOption("#zoom", "2");
    const zoomed = await page.evaluate(() => ({
      cssWidth: document.getElementById("compare").getBoundingClientRect().width,
      width: window.aezoo.canvas.width,
      ratio: window.devicePixelRatio,
    }));
    report.interaction = { start, end, key, zoomed };
  }

  for (const image of options.hook ?? []) {
    report.hook.push(
      await page.evaluate(async (image) => {
        const result = await window.aezoo.upscale(image);
        const plain = (i) => ({ width: i.width, height: i.height, rgba: Array.from(i.rgba) });
        return { model: plain(result.model), bicubic: plain(result.bicubic), mode: result.mode, ms: result.ms };
      }, image),
    );
  }

  for (const path of options.refused) {
    expected.push(basename(path));
    const before = await page.evaluate(() => window.aezoo.canvas.width);
    await pick(page, path);
    report.refused.push({
      name: basename(path),
      message: await page.locator("#message").textContent(),
      shown: await page.locator("#message").isVisible(),
      canvasKept: (await page.evaluate(() => window.aezoo.canvas.width)) === before,
      upscaled: await page.evaluate(() => window.aezoo.lastUpscaleMs !== null),
    });
  }
} catch (error) {
  report.errors.push(`script: ${error.message}`);
} finally {
  await browser.close();
}
process.stdout.write(`${JSON.stringify(report)}\n`);
process.exitCode = report.errors.length || !report.ready?.supported ? 1 : 0;

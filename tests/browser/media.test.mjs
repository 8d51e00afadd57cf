// Posters and playable renditions as a person sees them, with ffmpeg on the server: an iPhone-
// style HEVC .mov uploaded from the web app shows its jobs in the library, then a poster; its
// watch page plays in Chromium (which cannot decode HEVC) because the H.264 rendition is tried
// first, and the download link still gives the original bytes.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync, existsSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { createHash } from "node:crypto";
import { chromium } from "playwright-core";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const bin = process.env.FLARE_BIN || join(process.env.CARGO_TARGET_DIR || join(root, "target"), "debug/flare");
const shots = join(root, "target/browser-screenshots");
const work = mkdtempSync(join(tmpdir(), "flare-media-"));
const env = { ...process.env, FLARE_DATA_DIR: join(work, "data"), FLARE_LOG_LEVEL: "info", FLARE_FFMPEG_PATH: "ffmpeg" };
delete env.FLARE_CONFIG;
let server, base, browser, token, clip, videoId;

before(async () => {
  assert.ok(existsSync(bin), `build flare first (cargo build): ${bin} is missing`);
  mkdirSync(shots, { recursive: true });
  clip = join(work, "IMG_0042.mov");
  execFileSync("ffmpeg", ["-y", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=duration=12:size=640x360:rate=25", "-f", "lavfi",
    "-i", "sine=frequency=330:duration=12", "-c:v", "libx265", "-preset", "ultrafast", "-tag:v", "hvc1", "-x265-params", "log-level=error",
    "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", clip]);
  token = execFileSync(bin, ["token", "create", "--name", "media"], { env, cwd: work, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
  server = spawn(bin, ["serve", "--listen", "127.0.0.1:0"], { env, cwd: work, stdio: ["ignore", "ignore", "pipe"] });
  base = await new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error("flare did not start in 30 s")), 30_000);
    createInterface({ input: server.stderr }).on("line", (line) => {
      const m = line.match(/listening on (http:\/\/[0-9.:]+)/);
      if (m) { clearTimeout(timer); ok(m[1]); }
    });
  });
  browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--autoplay-policy=no-user-gesture-required"] });
});

after(async () => {
  if (browser) await browser.close();
  if (server) server.kill();
  rmSync(work, { recursive: true, force: true });
});

const sha256 = (buf) => createHash("sha256").update(buf).digest("hex");

test("an HEVC recording gets a poster and a rendition; its watch page plays in Chromium and downloads the original", async () => {
  const page = await browser.newPage({ viewport: { width: 1100, height: 800 } });
  await page.goto(base + "/");
  await page.getByLabel("Token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator("#app").waitFor();
  await page.setInputFiles("#files", clip);
  const row = page.locator(".video").first();
  // While the jobs run, the row says what is being made.
  await row.locator(".job-note:not([hidden])").waitFor({ timeout: 30_000 });
  assert.match(await row.locator(".job-note").textContent(), /poster|playable copy/);
  await page.screenshot({ path: join(shots, "20-library-jobs.png"), fullPage: true });
  // Then the poster appears and the note goes, by itself (the page looks again while jobs run).
  await page.waitForFunction(() => { const i = document.querySelector(".video .thumb img"); return i && !i.hidden && i.complete && i.naturalWidth > 0; }, null, { timeout: 90_000 });
  await row.locator(".job-note").waitFor({ state: "hidden", timeout: 90_000 });
  assert.equal(await row.locator(".codec-note").isHidden(), true, "a playable copy exists: no warning");
  await page.screenshot({ path: join(shots, "21-library-poster-rendition.png"), fullPage: true });

  const id = await row.getAttribute("data-id");
  videoId = id;
  const video = (await (await fetch(`${base}/api/video/${id}`, { headers: { Authorization: `Bearer ${token}` } })).json()).video;
  assert.equal(video.media.videoCodec, "hevc");
  assert.equal(video.renditions.length, 1);

  const watch = await browser.newPage({ viewport: { width: 1000, height: 760 } });
  await watch.goto(`${base}/v/${id}`);
  const player = watch.locator("video");
  await player.evaluate((v) => { v.muted = true; return v.play(); });
  await watch.waitForFunction(() => document.querySelector("video").currentTime > 1, null, { timeout: 20_000 });
  assert.equal(await player.evaluate((v) => v.currentSrc), video.renditions[0].url);
  assert.equal(await player.evaluate((v) => v.videoWidth), 640, "the picture decodes");
  assert.equal(await watch.locator(".codec-message").isHidden(), true);
  await watch.screenshot({ path: join(shots, "22-watch-hevc-plays.png") });
  // The QR code of the page's link, drawn in the page.
  await watch.getByRole("button", { name: "QR code" }).click();
  const svg = watch.locator(".qr-code svg");
  await svg.waitFor();
  assert.equal(await svg.getAttribute("role"), "img");
  assert.ok((await svg.innerHTML()).length > 1000, "no code drawn");
  assert.equal(await watch.locator(".qr-code svg title").textContent(), `QR code for ${base}/v/${id}`);
  await watch.locator(".qr").scrollIntoViewIfNeeded();
  await watch.screenshot({ path: join(shots, "23-watch-qr.png"), fullPage: true });
  const download = await watch.locator("a.download").getAttribute("href");
  const original = Buffer.from(await (await fetch(download)).arrayBuffer());
  assert.equal(sha256(original), sha256(readFileSync(clip)), "the download is the original");
  await watch.close();
  await page.close();
});

test("the watch page's vendored QR code library is the npm package's qrcode.js, byte for byte", async () => {
  const { createRequire } = await import("node:module");
  const dist = join(dirname(createRequire(import.meta.url).resolve("qrcode-generator/package.json")), "qrcode.js");
  const served = Buffer.from(await (await fetch(`${base}/static/qrcode.js`)).arrayBuffer());
  assert.equal(sha256(served), sha256(readFileSync(dist)));
});

// axe-core (npm), run in each page as it is; its own script goes in past the pages' CSP.
async function axe(page) {
  const { createRequire } = await import("node:module");
  const source = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
  await page.evaluate(source);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  return result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
}

test("axe-core finds no serious or critical violation in the app, the watch page or the embed, and the phone view does not scroll sideways", async () => {
  assert.ok(videoId, "needs the video of the test above");
  for (const [viewport, colorScheme] of [[{ width: 1100, height: 800 }, "dark"], [{ width: 390, height: 844 }, "light"]]) {
    const context = await browser.newContext({ viewport, colorScheme, bypassCSP: true });
    const page = await context.newPage();
    await page.goto(base + "/");
    assert.deepEqual(await axe(page), [], "sign-in page");
    await page.getByLabel("Token").fill(token);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.locator(".video").first().waitFor();
    await page.locator(".video .thumb img:not([hidden])").first().waitFor();
    assert.deepEqual(await axe(page), [], `app at ${viewport.width} px`);
    for (const path of [`/v/${videoId}`, `/embed/${videoId}`]) {
      await page.goto(base + path);
      assert.deepEqual(await axe(page), [], `${path} at ${viewport.width} px`);
      const sideways = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      assert.ok(sideways <= 0, `${path} scrolls sideways by ${sideways} px at ${viewport.width} px`);
    }
    await page.goto(base + "/");
    const sideways = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(sideways <= 0, `the app scrolls sideways by ${sideways} px at ${viewport.width} px`);
    if (viewport.width < 500) await page.screenshot({ path: join(shots, "24-phone-library-posters.png"), fullPage: true });
    await context.close();
  }
});

// The web app, the watch page and the embed page, driven in Debian's headless Chromium the way
// a person would use them, against a flare started here on loopback with a fresh data folder.
// Screenshots of each step land in target/browser-screenshots/ for a person to look at.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const bin = process.env.FLARE_BIN || join(process.env.CARGO_TARGET_DIR || join(root, "target"), "debug/flare");
const shots = join(root, "target/browser-screenshots");
const work = mkdtempSync(join(tmpdir(), "flare-browser-"));
// 4 MiB per request (presign's chunkSize): a network cut lands between requests, as on Wi-Fi.
const env = { ...process.env, FLARE_DATA_DIR: join(work, "data"), FLARE_LOG_LEVEL: "info", FLARE_FFMPEG_PATH: "off", FLARE_MAX_APPEND_BYTES: String(4 << 20) };
delete env.FLARE_CONFIG;
const LAUNCH = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"];

let server, base, browser, sample;
const flare = (...args) => execFileSync(bin, args, { env, cwd: work, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();

before(async () => {
  assert.ok(existsSync(bin), `build flare first (cargo build): ${bin} is missing`);
  mkdirSync(shots, { recursive: true });
  sample = join(work, "sample.mp4");
  execFileSync("ffmpeg", ["-y", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=duration=6:size=320x240:rate=25", "-f", "lavfi",
    "-i", "sine=frequency=440:duration=6", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-movflags", "+faststart", sample]);
  server = spawn(bin, ["serve", "--listen", "127.0.0.1:0"], { env, cwd: work, stdio: ["ignore", "ignore", "pipe"] });
  base = await new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error("flare did not start in 30 s")), 30_000);
    createInterface({ input: server.stderr }).on("line", (line) => {
      const m = line.match(/listening on (http:\/\/\S+)/);
      if (m) { clearTimeout(timer); ok(m[1]); }
    });
    server.on("exit", (code) => fail(new Error(`flare exited with ${code}`)));
  });
  browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: LAUNCH }); // Playwright gives each launch a fresh, empty profile of its own.
});

after(async () => {
  if (browser) await browser.close();
  if (server) server.kill();
  rmSync(work, { recursive: true, force: true });
});

async function api(token, method, path, body) {
  const res = await fetch(base + path, { method, headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" }, body: body && JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

// A row's actions other than the first sit in its "More actions" menu.
async function action(item, name) {
  const menu = item.locator("details.menu");
  if (!(await menu.evaluate((d) => d.open))) await menu.locator("summary").click();
  await item.getByRole("button", { name, exact: true }).click();
}

async function signIn(page, token) {
  await page.goto(base + "/");
  await page.getByLabel("Token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
}

test("sign-in tells a mistyped, revoked, expired or under-scoped token apart", async () => {
  const page = await browser.newPage();
  const cases = [];
  cases.push(["flr_pat_" + "x".repeat(43), /not valid/]);
  const revoked = flare("token", "create", "--name", "revoked");
  const id = JSON.parse(flare("token", "list", "--json")).find((t) => t.name === "revoked").id;
  flare("token", "revoke", id);
  cases.push([revoked, /revoked/]);
  cases.push([flare("token", "create", "--name", "short", "--expires-in", "1s"), /expired/]);
  cases.push([flare("token", "create", "--name", "nolist", "--scope", "uploads:write"), /videos:read/]);
  await new Promise((r) => setTimeout(r, 1100)); // let the 1 s token expire
  for (const [token, message] of cases) {
    await signIn(page, token);
    await assert.doesNotReject(page.getByRole("alert").filter({ hasText: message }).waitFor({ timeout: 5000 }), `no ${message} message`);
    assert.equal(await page.locator("#app").isVisible(), false);
  }
  await page.screenshot({ path: join(shots, "01-sign-in-refused.png") });
  await page.close();
});

test("a person uploads, watches, renames, protects, embeds and deletes a video", async (t) => {
  const token = flare("token", "create", "--name", "browser");
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  page.on("dialog", (d) => d.dismiss()); // no window.prompt fallbacks expected

  await t.test("sign in", async () => {
    await signIn(page, token);
    await page.locator("#app").waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem("flare.token")), token);
    await page.screenshot({ path: join(shots, "02-signed-in.png") });
  });

  let videoId;
  await t.test("upload with progress to 100 %", async () => {
    await page.setInputFiles("#files", sample);
    const row = page.locator(".upload").first();
    await row.locator(".upload-stats", { hasText: "100 %" }).waitFor({ timeout: 30_000 });
    assert.equal(await row.locator("progress").evaluate((p) => p.value), 100);
    await page.locator(".video").first().waitFor();
    videoId = await page.locator(".video").first().getAttribute("data-id");
    const { body } = await api(token, "GET", `/api/video/${videoId}`);
    assert.equal(body.video.status, "ready");
    assert.equal(body.video.size, (await import("node:fs")).statSync(sample).size);
    await page.screenshot({ path: join(shots, "03-uploaded.png"), fullPage: true });
  });

  await t.test("without ffmpeg on the server, the page sends a poster grabbed from the file; the library and the watch page show it", async () => {
    let video;
    for (let i = 0; i < 100 && !(video && video.posterUrl); i++) {
      await new Promise((r) => setTimeout(r, 150));
      video = (await api(token, "GET", `/api/video/${videoId}`)).body.video;
    }
    assert.ok(video.posterUrl, "no poster was sent");
    assert.equal(video.jobs, undefined, "the server has no ffmpeg: no jobs");
    const bytes = Buffer.from(await (await fetch(video.posterUrl)).arrayBuffer());
    assert.deepEqual([...bytes.subarray(0, 3)], [0xff, 0xd8, 0xff], "the poster is not a JPEG");
    const img = page.locator(`.video[data-id="${videoId}"] .thumb img`);
    await page.getByRole("button", { name: "Refresh" }).click();
    await page.waitForFunction((id) => { const i = document.querySelector(`.video[data-id="${id}"] .thumb img`); return i && !i.hidden && i.complete && i.naturalWidth > 0; }, videoId, { timeout: 10_000 });
    assert.equal(await img.evaluate((i) => i.naturalWidth), 320);
    assert.match(await page.locator(`.video[data-id="${videoId}"] .thumb-duration`).textContent(), /^0:0[56]$/);
    const watch = await browser.newPage();
    await watch.goto(`${base}/v/${videoId}`);
    assert.equal(await watch.locator("video").getAttribute("poster"), video.posterUrl);
    await watch.screenshot({ path: join(shots, "03c-watch-poster.png") });
    await watch.close();
    await page.screenshot({ path: join(shots, "03b-library-poster.png"), fullPage: true });
  });

  await t.test("the watch page plays and seeks with a honoured Range", async () => {
    const watch = await browser.newPage();
    const ranges = [];
    watch.on("response", (r) => { if (r.url().includes("/media/") && r.status() === 206) ranges.push(r.headers()["content-range"]); });
    await watch.goto(`${base}/v/${videoId}`);
    const video = watch.locator("video");
    await video.evaluate((v) => { v.muted = true; return v.play(); });
    await watch.waitForFunction(() => document.querySelector("video").currentTime > 0.5, null, { timeout: 15_000 });
    await video.evaluate((v) => { v.currentTime = 4; });
    await watch.waitForFunction(() => document.querySelector("video").currentTime >= 4, null, { timeout: 15_000 });
    assert.ok(ranges.length > 0, "no 206 answer to a Range request was seen");
    assert.match(ranges[0], /^bytes \d+-\d+\/\d+$/);
    await watch.screenshot({ path: join(shots, "04-watch-playing.png") });
    await watch.close();
  });

  await t.test("rename", async () => {
    const item = page.locator(`.video[data-id="${videoId}"]`);
    await action(item, "Rename");
    await page.getByLabel("Title", { exact: true }).fill("Lab meeting, week 3");
    await page.screenshot({ path: join(shots, "05-rename-dialog.png") });
    await page.locator("#rename-dialog").getByRole("button", { name: "Save" }).click();
    await item.locator(".video-title", { hasText: "Lab meeting, week 3" }).waitFor();
    assert.equal((await api(token, "GET", `/api/video/${videoId}`)).body.video.title, "Lab meeting, week 3");
  });

  await t.test("protect with a password; a fresh browser must enter it", async () => {
    const item = page.locator(`.video[data-id="${videoId}"]`);
    await action(item, "Password");
    await page.getByLabel("New password").fill("correct horse");
    await page.locator("#password-dialog").getByRole("button", { name: "Set password" }).click();
    await item.locator(".locked").waitFor({ state: "visible" });

    const stranger = await browser.newContext();
    const gate = await stranger.newPage();
    await gate.goto(`${base}/v/${videoId}`);
    assert.equal(await gate.locator("video").count(), 0, "the video shows before the password");
    await gate.getByLabel("Password").fill("wrong");
    await gate.getByRole("button", { name: "Watch" }).click();
    await gate.getByRole("alert").filter({ hasText: "not right" }).waitFor();
    await gate.screenshot({ path: join(shots, "06-password-refused.png") });
    await gate.getByLabel("Password").fill("correct horse");
    await gate.getByRole("button", { name: "Watch" }).click();
    await gate.locator("video").waitFor();
    await gate.locator("video").evaluate((v) => { v.muted = true; return v.play(); });
    await gate.waitForFunction(() => document.querySelector("video").currentTime > 0.3, null, { timeout: 15_000 });
    await gate.screenshot({ path: join(shots, "07-password-accepted.png") });
    await stranger.close();
  });

  await t.test("an embed setting shows in the preview and the embed page", async () => {
    // A protected video's preview shows the password form, as a viewer's would: open it first.
    const item = page.locator(`.video[data-id="${videoId}"]`);
    await action(item, "Password");
    await page.locator("#password-dialog").getByRole("button", { name: "Remove password" }).click();
    await item.locator(".locked").waitFor({ state: "hidden" });
    await action(item, "Embed settings");
    const preview = item.frameLocator("iframe");
    // Attached, not visible: a narrow player hides the speed menu to make room.
    await preview.locator(".ctl-speed").waitFor({ state: "attached" });
    await item.getByLabel("Speed").uncheck();
    await preview.locator(".controls").waitFor({ state: "attached" });
    await page.waitForFunction((id) => {
      const f = document.querySelector(`.video[data-id="${id}"] iframe`);
      return f && f.contentDocument && f.contentDocument.querySelector(".controls") && !f.contentDocument.querySelector(".ctl-speed");
    }, videoId, { timeout: 10_000 });
    const settings = (await api(token, "GET", `/api/video/${videoId}/embed-settings`)).body.embedSettings;
    assert.equal(settings.controlOptions.showSpeed, false);
    await page.screenshot({ path: join(shots, "08-embed-settings.png"), fullPage: true });

    const embed = await browser.newPage({ viewport: { width: 640, height: 360 } });
    await embed.goto(`${base}/embed/${videoId}`);
    assert.equal(await embed.locator(".ctl-speed").count(), 0);
    assert.equal(await embed.locator(".ctl-play").count(), 1);
    await embed.locator(".ctl-play").click();
    await embed.waitForFunction(() => document.querySelector("video").currentTime > 0.3, null, { timeout: 15_000 });
    await embed.screenshot({ path: join(shots, "09-embed-page.png") });
    await embed.close();
  });

  await t.test("captions: a WebVTT file added in the library shows on the watch page", async () => {
    const { writeFileSync } = await import("node:fs");
    const vtt = join(work, "captions.vtt");
    writeFileSync(vtt, "WEBVTT\n\n00:00.000 --> 00:05.000\nHello from the captions\n");
    const item = page.locator(`.video[data-id="${videoId}"]`);
    await action(item, "Captions");
    await page.getByLabel("Language tag").fill("en");
    await page.getByLabel("Name shown in the player").fill("English");
    await page.locator("#captions-dialog").getByLabel("Captions file").setInputFiles(vtt);
    await page.screenshot({ path: join(shots, "09b-captions-dialog.png") });
    await page.locator("#captions-dialog").getByRole("button", { name: "Add captions" }).click();
    await item.locator(".video-meta", { hasText: "captions: en" }).waitFor();
    assert.equal((await api(token, "GET", `/api/video/${videoId}`)).body.video.captions[0].label, "English");
    const watch = await browser.newPage();
    await watch.goto(`${base}/v/${videoId}`);
    await watch.locator("video").evaluate((v) => { v.textTracks[0].mode = "showing"; v.muted = true; return v.play(); });
    await watch.waitForFunction(() => {
      const t = document.querySelector("video").textTracks[0];
      return t.activeCues && t.activeCues.length && t.activeCues[0].text.includes("Hello from the captions");
    }, null, { timeout: 15_000 });
    await watch.screenshot({ path: join(shots, "09c-watch-captions.png") });
    await watch.close();
  });

  await t.test("the watch page starts at ?t= and copies a link at the current time", async () => {
    const context = await browser.newContext({ permissions: ["clipboard-read", "clipboard-write"] });
    const watch = await context.newPage();
    await watch.goto(`${base}/v/${videoId}?t=3`);
    await watch.waitForFunction(() => document.querySelector("video").currentTime >= 3, null, { timeout: 15_000 });
    await watch.getByRole("button", { name: "Copy link at current time" }).click();
    await watch.locator(".share-status", { hasText: "Link copied" }).waitFor();
    const copied = await watch.evaluate(() => navigator.clipboard.readText());
    assert.equal(copied, `${base}/v/${videoId}?t=3`);
    await watch.screenshot({ path: join(shots, "09d-watch-share.png"), fullPage: true });
    await context.close();
  });

  await t.test("delete with confirmation", async () => {
    const item = page.locator(`.video[data-id="${videoId}"]`);
    await action(item, "Delete");
    await page.screenshot({ path: join(shots, "10-delete-confirm.png") });
    await page.locator("#delete-dialog").getByRole("button", { name: "Delete" }).click();
    await item.waitFor({ state: "detached" });
    assert.equal((await api(token, "GET", `/api/video/${videoId}`)).status, 404);
    await page.screenshot({ path: join(shots, "11-deleted.png"), fullPage: true });
  });

  await t.test("sign out clears the token", async () => {
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.locator("#signin").waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem("flare.token")), null);
  });
  await page.close();
});

test("refusals during upload are explained, and the page stays usable on a phone", async () => {
  const token = flare("token", "create", "--name", "phone");
  const page = await browser.newPage({ viewport: { width: 390, height: 844 } });
  await signIn(page, token);
  await page.locator("#app").waitFor();
  await page.setInputFiles("#files", { name: "notes.txt", mimeType: "text/plain", buffer: Buffer.from("not a video") });
  await page.locator(".upload-error", { hasText: "not a supported video type" }).waitFor();
  await page.setInputFiles("#files", { name: "empty.mp4", mimeType: "video/mp4", buffer: Buffer.alloc(0) });
  await page.locator(".upload-error", { hasText: "empty" }).waitFor();
  const { body } = await api(token, "GET", "/api/videos");
  assert.equal(body.videos.length, 0, "a refused upload left a video record behind");
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
  assert.equal(overflow, false, "the page scrolls sideways on a phone");
  await page.screenshot({ path: join(shots, "12-phone-refusals.png"), fullPage: true });
  await page.close();
});

test("uploads resume: a dropped network by itself, a reload when the same file is picked again", async (t) => {
  const { writeFileSync, readFileSync } = await import("node:fs");
  const { createHash, randomBytes } = await import("node:crypto");
  const token = flare("token", "create", "--name", "resume");
  const big = join(work, "lecture.mp4");
  writeFileSync(big, randomBytes(24 * 1024 * 1024));
  const want = createHash("sha256").update(readFileSync(big)).digest("hex");
  const servedHash = async (id) => {
    const { body } = await api(token, "GET", `/api/video/${id}`);
    const res = await fetch(body.video.publicUrl);
    return createHash("sha256").update(Buffer.from(await res.arrayBuffer())).digest("hex");
  };
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  const cdp = await page.context().newCDPSession(page);
  // About 8 MB/s up: a 24 MiB upload takes a few seconds, long enough to cut.
  const slow = { offline: false, latency: 20, downloadThroughput: 50e6, uploadThroughput: 8e6 };
  await cdp.send("Network.enable");
  await cdp.send("Network.emulateNetworkConditions", slow);
  page.on("dialog", (d) => d.accept()); // the warning before leaving mid-upload
  await signIn(page, token);
  await page.locator("#app").waitFor();
  const row = page.locator("#uploads .upload").first();
  const percent = async () => Number((await row.locator("progress").evaluate((p) => p.value)) || 0);

  await t.test("offline mid-upload, then online: it finishes by itself, bytes intact", async () => {
    const heads = [];
    page.on("request", (r) => { if (r.method() === "HEAD" && r.url().includes("/upload/")) heads.push(r.url()); });
    await page.setInputFiles("#files", big);
    await page.waitForFunction(() => Number(document.querySelector("#uploads progress")?.value) >= 20, null, { timeout: 30_000 });
    await cdp.send("Network.emulateNetworkConditions", { ...slow, offline: true });
    await page.evaluate(() => window.dispatchEvent(new Event("offline")));
    await row.locator(".upload-error", { hasText: "network is gone" }).waitFor({ timeout: 20_000 });
    await page.screenshot({ path: join(shots, "13-upload-offline.png"), fullPage: true });
    await new Promise((r) => setTimeout(r, 1500));
    await cdp.send("Network.emulateNetworkConditions", slow);
    await page.evaluate(() => window.dispatchEvent(new Event("online")));
    await page.locator("#uploads .upload.done").first().waitFor({ timeout: 90_000 });
    assert.ok(heads.length >= 1, "the upload did not ask the server where to resume");
    const id = await page.locator(".video").first().getAttribute("data-id");
    assert.equal(await servedHash(id), want);
    await page.screenshot({ path: join(shots, "14-upload-resumed.png"), fullPage: true });
  });

  await t.test("a reload mid-upload: the page offers to resume, and the same file continues it", async () => {
    const before = (await api(token, "GET", "/api/videos")).body.videos.length;
    await page.setInputFiles("#files", big);
    await page.waitForFunction(() => Number(document.querySelector("#uploads progress")?.value) >= 30, null, { timeout: 30_000 });
    const atReload = await percent();
    await page.reload();
    await page.locator("#app").waitFor();
    const unfinished = page.locator("#unfinished .upload").first();
    await unfinished.locator(".upload-stats", { hasText: "Interrupted at" }).waitFor({ timeout: 10_000 });
    const kept = await unfinished.locator("progress").evaluate((p) => p.value);
    assert.ok(kept >= Math.min(atReload, 20) - 5 && kept > 0, `kept ${kept} % of the ${atReload} % sent`);
    // The library says the video has no file yet, without offering it as abandoned.
    await page.screenshot({ path: join(shots, "15-reload-offers-resume.png"), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: join(shots, "15b-reload-offers-resume-phone.png"), fullPage: true });
    await page.setViewportSize({ width: 1100, height: 900 });
    let firstOffset = null;
    page.on("request", (r) => { if (r.method() === "PATCH" && firstOffset === null) firstOffset = Number(r.headers()["upload-offset"]); });
    await page.setInputFiles("#files", big);
    await page.locator("#uploads .upload.done").first().waitFor({ timeout: 90_000 });
    assert.ok(firstOffset > 0, `the upload started again from ${firstOffset}`);
    const videos = (await api(token, "GET", "/api/videos")).body.videos;
    assert.equal(videos.length, before + 1, "resuming made a second video");
    assert.equal(await servedHash(videos[0].id), want);
    assert.equal(await page.locator("#unfinished .upload").count(), 0);
  });

  await t.test("cancel mid-upload leaves nothing pending", async () => {
    const before = (await api(token, "GET", "/api/videos")).body.videos.length;
    await page.setInputFiles("#files", big);
    await page.waitForFunction(() => Number(document.querySelector("#uploads progress")?.value) >= 10, null, { timeout: 30_000 });
    await row.getByRole("button", { name: "Cancel" }).click();
    await row.locator(".upload-stats", { hasText: "Cancelled" }).waitFor();
    await page.waitForFunction(async () => true);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal((await api(token, "GET", "/api/videos")).body.videos.length, before);
  });

  await t.test("a pending video with no upload here says so and offers to finish it", async () => {
    const { body } = await api(token, "POST", "/api/video/create", { fileName: "forgotten.mp4", title: "Forgotten" });
    await page.getByRole("button", { name: "Refresh" }).click();
    const item = page.locator(`.video[data-id="${body.video.id}"]`);
    await item.locator(".pending-note", { hasText: "did not finish" }).waitFor();
    await page.screenshot({ path: join(shots, "16-pending-offers-finish.png"), fullPage: true });
    const chooser = page.waitForEvent("filechooser");
    await item.getByRole("button", { name: "Upload its file" }).click();
    await (await chooser).setFiles(sample);
    await item.locator(".status.ready").waitFor({ timeout: 30_000 });
    assert.equal((await api(token, "GET", `/api/video/${body.video.id}`)).body.video.status, "ready");
  });

  await t.test("search, sort, and delete several at once after one confirmation", async () => {
    await page.getByLabel("Search by title").fill("forgot");
    await page.waitForFunction(() => [...document.querySelectorAll("#videos .video")].filter((li) => !li.hidden).length === 1);
    await page.screenshot({ path: join(shots, "16b-library-search.png"), fullPage: true });
    await page.getByLabel("Search by title").fill("");
    await page.getByLabel("Sort").selectOption("title");
    const titles = await page.locator("#videos .video .video-title").allTextContents();
    assert.deepEqual(titles, [...titles].sort((a, b) => a.toLowerCase().localeCompare(b.toLowerCase())));
    const before = (await api(token, "GET", "/api/videos")).body.videos.length;
    const rows = page.locator("#videos .video");
    await rows.nth(0).locator(".pick").check();
    await rows.nth(1).locator(".pick").check();
    await page.getByRole("button", { name: "Delete selected (2)" }).click();
    await page.screenshot({ path: join(shots, "16c-bulk-delete-confirm.png") });
    await page.locator("#bulk-dialog").getByRole("button", { name: "Delete them" }).click();
    await page.waitForFunction((n) => document.querySelectorAll("#videos .video").length === n, before - 2);
    assert.equal((await api(token, "GET", "/api/videos")).body.videos.length, before - 2);
  });

  await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
  // The phone layout of the unfinished-upload offer.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: join(shots, "17-phone-after-resume.png"), fullPage: true });
  await page.close();
});

test("a light theme follows the system setting", async () => {
  const token = flare("token", "create", "--name", "light");
  const context = await browser.newContext({ colorScheme: "light", viewport: { width: 1100, height: 800 } });
  const page = await context.newPage();
  await signIn(page, token);
  await page.locator("#app").waitFor();
  const bg = await page.evaluate(() => getComputedStyle(document.querySelector(".card")).backgroundColor);
  assert.equal(bg, "rgb(255, 255, 255)");
  await page.screenshot({ path: join(shots, "19-light-theme.png"), fullPage: true });
  await context.close();
});

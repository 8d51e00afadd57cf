// Uppy 6 (its published bundle, dist/uppy.min.js) in Debian's headless Chromium, on a page of
// another origin (so the CORS expose list is tested too), uploading to presign's resumable URL:
// the network cut mid-upload and restored, and a file removed mid-upload (Uppy sends DELETE).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, existsSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { createHash } from "node:crypto";
import { createServer } from "node:http";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const bin = process.env.FLARE_BIN || join(process.env.CARGO_TARGET_DIR || join(root, "target"), "debug/flare");
const shots = join(root, "target/browser-screenshots");
const work = mkdtempSync(join(tmpdir(), "flare-uppy-"));
const uppyJs = readFileSync(join(dirname(createRequire(import.meta.url).resolve("uppy/package.json")), "dist/uppy.min.js"));
const LAUNCH = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking"];
let server, site, origin, base, token, browser;

const PAGE = `<!doctype html><meta charset="utf-8"><title>Uppy against flare</title>
<script src="/uppy.min.js"></script>
<script>
  window.progress = 0;
  const uppy = new Uppy.Uppy({ autoProceed: false }).use(Uppy.Tus, {
    endpoint: "about:blank", chunkSize: 1 << 20, retryDelays: [0, 500, 1000, 2000, 3000, 5000],
  });
  uppy.on("upload-progress", (f, p) => { window.progress = p.bytesUploaded / p.bytesTotal; });
  function blob(size) {
    const data = new Uint8Array(size);
    for (let i = 0; i < size; i += 65536) crypto.getRandomValues(data.subarray(i, Math.min(size, i + 65536)));
    return data;
  }
  window.start = async (url, size) => {
    const data = blob(size);
    const digest = [...new Uint8Array(await crypto.subtle.digest("SHA-256", data))].map((b) => b.toString(16).padStart(2, "0")).join("");
    const id = uppy.addFile({ name: "rec.mp4", type: "video/mp4", data: new Blob([data], { type: "video/mp4" }) });
    uppy.setFileState(id, { tus: { endpoint: url } });
    window.fileId = id;
    window.done = uppy.upload().then((r) => ({ ok: r.successful.length, failed: r.failed.map((f) => String(f.error)), digest }));
  };
  window.remove = () => uppy.removeFile(window.fileId);
</script>`;

before(async () => {
  assert.ok(existsSync(bin), `build flare first (cargo build): ${bin} is missing`);
  site = createServer((req, res) => {
    if (req.url === "/uppy.min.js") { res.writeHead(200, { "Content-Type": "text/javascript" }); res.end(uppyJs); }
    else { res.writeHead(200, { "Content-Type": "text/html" }); res.end(PAGE); }
  });
  await new Promise((ok) => site.listen(0, "127.0.0.1", ok));
  origin = `http://127.0.0.1:${site.address().port}`;
  const env = { ...process.env, FLARE_DATA_DIR: join(work, "data"), FLARE_LOG_LEVEL: "info", FLARE_FFMPEG_PATH: "off", FLARE_CORS_ALLOWED_ORIGINS: origin };
  delete env.FLARE_CONFIG;
  token = execFileSync(bin, ["token", "create", "--name", "uppy"], { env, cwd: work, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
  server = spawn(bin, ["serve", "--listen", "127.0.0.1:0"], { env, cwd: work, stdio: ["ignore", "ignore", "pipe"] });
  base = await new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error("flare did not start in 30 s")), 30_000);
    createInterface({ input: server.stderr }).on("line", (line) => {
      const m = line.match(/listening on (http:\/\/\S+)/);
      if (m) { clearTimeout(timer); ok(m[1]); }
    });
  });
  browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: LAUNCH });
});

after(async () => {
  if (browser) await browser.close();
  if (server) server.kill();
  if (site) site.close();
  rmSync(work, { recursive: true, force: true });
});

async function presign() {
  const h = { Authorization: `Bearer ${token}`, "Content-Type": "application/json" };
  const v = await (await fetch(`${base}/api/video/create`, { method: "POST", headers: h, body: JSON.stringify({ fileName: "rec.mp4" }) })).json();
  return (await fetch(`${base}/api/video/upload/presign`, { method: "POST", headers: h, body: JSON.stringify({ videoId: v.video.id, fileName: "rec.mp4", resumable: true }) })).json();
}

async function page() {
  const p = await browser.newPage();
  const cdp = await p.context().newCDPSession(p);
  await cdp.send("Network.enable");
  await p.goto(origin + "/");
  return { p, cdp };
}

test("Uppy: the network cut mid-upload and restored, the upload finishes with the same bytes", async () => {
  const presigned = await presign();
  const { p, cdp } = await page();
  const slow = { offline: false, latency: 20, downloadThroughput: 50e6, uploadThroughput: 8e6 };
  await cdp.send("Network.emulateNetworkConditions", slow);
  await p.evaluate(([url]) => window.start(url, 16 << 20), [presigned.resumable.url]);
  await p.waitForFunction(() => window.progress >= 0.3, null, { timeout: 30_000 });
  await cdp.send("Network.emulateNetworkConditions", { ...slow, offline: true });
  await new Promise((r) => setTimeout(r, 1500));
  await cdp.send("Network.emulateNetworkConditions", slow);
  const result = await p.evaluate(() => window.done);
  assert.equal(result.ok, 1, JSON.stringify(result.failed));
  const served = Buffer.from(await (await fetch(presigned.publicUrl)).arrayBuffer());
  assert.equal(createHash("sha256").update(served).digest("hex"), result.digest);
  await p.screenshot({ path: join(shots, "18-uppy-finished.png") });
  await p.close();
});

test("Uppy: removing a file mid-upload sends DELETE; the URL starts again at 0", async () => {
  const presigned = await presign();
  const { p, cdp } = await page();
  await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 20, downloadThroughput: 50e6, uploadThroughput: 4e6 });
  const deletes = [];
  p.on("request", (r) => { if (r.method() === "DELETE") deletes.push(r.url()); });
  await p.evaluate(([url]) => window.start(url, 16 << 20), [presigned.resumable.url]);
  await p.waitForFunction(() => window.progress >= 0.2, null, { timeout: 30_000 });
  await p.evaluate(() => window.remove());
  const deadline = Date.now() + 10_000;
  while (!deletes.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assert.equal(deletes.length, 1, "Uppy sent no DELETE");
  let offset = null;
  while (Date.now() < deadline) {
    const head = await fetch(presigned.resumable.url, { method: "HEAD", headers: { "Tus-Resumable": "1.0.0" } });
    offset = head.headers.get("upload-offset");
    if (offset === "0") break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(offset, "0");
  await p.close();
});

// Conformance with tus-js-client 4.3.1 in Node (the client most tus uploads in the wild use, and
// the one the web app vendors): each scenario uploads to presign's resumable URL, and the bytes
// served at publicUrl must hash equal to the source. The server runs on a fixed loopback port
// so that it can be killed with SIGKILL and started again under the same URLs.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { createHash, randomBytes } from "node:crypto";
import { createServer } from "node:net";
import { Readable } from "node:stream";
import * as tus from "tus-js-client";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const bin = process.env.FLARE_BIN || join(process.env.CARGO_TARGET_DIR || join(root, "target"), "debug/flare");
const work = mkdtempSync(join(tmpdir(), "flare-tus-"));
const env = { ...process.env, FLARE_DATA_DIR: join(work, "data"), FLARE_LOG_LEVEL: "info", FLARE_FFMPEG_PATH: "off" };
delete env.FLARE_CONFIG;
let server, port, base, token;

const sha256 = (buf) => createHash("sha256").update(buf).digest("hex");

async function freePort() {
  return new Promise((ok) => {
    const s = createServer().listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => ok(p)); });
  });
}

async function start() {
  server = spawn(bin, ["serve", "--listen", `127.0.0.1:${port}`], { env, cwd: work, stdio: ["ignore", "ignore", "pipe"] });
  await new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error("flare did not start in 30 s")), 30_000);
    createInterface({ input: server.stderr }).on("line", (line) => {
      if (line.includes("listening on")) { clearTimeout(timer); ok(); }
    });
  });
}

before(async () => {
  assert.ok(existsSync(bin), `build flare first (cargo build): ${bin} is missing`);
  token = execFileSync(bin, ["token", "create", "--name", "tus"], { env, cwd: work, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
  port = await freePort();
  base = `http://127.0.0.1:${port}`;
  await start();
});

after(() => {
  if (server) server.kill("SIGKILL");
  rmSync(work, { recursive: true, force: true });
});

async function api(method, path, body) {
  const res = await fetch(base + path, { method, headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" }, body: body && JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

/** A new video and its presign answer with a resumable URL. */
async function presign(extra = {}) {
  const created = await api("POST", "/api/video/create", { fileName: "rec.mp4" });
  assert.equal(created.status, 201);
  const p = await api("POST", "/api/video/upload/presign", { videoId: created.body.video.id, fileName: "rec.mp4", resumable: true, ...extra });
  assert.equal(p.status, 200, JSON.stringify(p.body));
  return p.body;
}

async function served(p) {
  const res = await fetch(p.publicUrl);
  assert.equal(res.status, 200);
  return sha256(Buffer.from(await res.arrayBuffer()));
}

function upload(data, options) {
  return new Promise((ok, fail) => {
    const u = new tus.Upload(data, { retryDelays: [0, 200, 500, 1000, 2000, 3000], ...options, onSuccess: () => ok(u), onError: fail });
    u.start();
  });
}

test("tus-js-client: creation at the resumable URL, 1 MiB chunks", async () => {
  const p = await presign();
  const data = randomBytes(5 * 1024 * 1024 + 17);
  let requests = 0;
  await upload(data, { endpoint: p.resumable.url, chunkSize: 1 << 20, metadata: { filename: "rec.mp4", filetype: "video/mp4" }, onAfterResponse: () => { requests++; } });
  assert.ok(requests >= 7, `only ${requests} requests for 6 chunks`);
  assert.equal(await served(p), sha256(data));
});

test("tus-js-client: abort mid-upload, then a new Upload resumes from the server's offset (uploadUrl)", async () => {
  const p = await presign();
  const data = randomBytes(6 * 1024 * 1024);
  let sent = 0;
  await new Promise((ok, fail) => {
    const u = new tus.Upload(data, {
      endpoint: p.resumable.url, chunkSize: 1 << 20, onError: fail, onSuccess: () => fail(new Error("finished before the abort")),
      onChunkComplete: (_c, accepted) => { if (accepted >= 2 << 20 && !sent) { sent = accepted; u.abort().then(ok); } },
    });
    u.start();
  });
  const patched = [];
  await upload(data, { uploadUrl: p.resumable.url, chunkSize: 1 << 20, onAfterResponse: (req, res) => { if (req.getMethod() === "PATCH") patched.push(req.getURL()); } });
  assert.equal(patched.length, 4, "resumed from 2 MiB: four 1 MiB chunks left");
  assert.equal(await served(p), sha256(data));
});

test("tus-js-client: uploadDataDuringCreation (creation-with-upload)", async () => {
  const p = await presign();
  const data = randomBytes(3 * 1024 * 1024);
  await upload(data, { endpoint: p.resumable.url, uploadDataDuringCreation: true, chunkSize: 2 << 20 });
  assert.equal(await served(p), sha256(data));
});

test("tus-js-client: uploadLengthDeferred with a stream", async () => {
  const p = await presign();
  const data = randomBytes(2 * 1024 * 1024 + 5);
  await upload(Readable.from([data.subarray(0, 1 << 20), data.subarray(1 << 20)]), { endpoint: p.resumable.url, uploadLengthDeferred: true, chunkSize: 512 * 1024 });
  assert.equal(await served(p), sha256(data));
});

test("tus-js-client: abort(true) sends DELETE; the URL is unspent and starts again at 0", async () => {
  const p = await presign();
  const data = randomBytes(3 * 1024 * 1024);
  await new Promise((ok, fail) => {
    const u = new tus.Upload(data, {
      endpoint: p.resumable.url, chunkSize: 1 << 20, onError: fail,
      onChunkComplete: (_c, accepted) => { if (accepted === 1 << 20) u.abort(true).then(ok, fail); },
    });
    u.start();
  });
  const head = await fetch(p.resumable.url, { method: "HEAD", headers: { "Tus-Resumable": "1.0.0" } });
  assert.equal(head.headers.get("upload-offset"), "0");
  const put = await fetch(p.uploadUrl, { method: "PUT", headers: p.headers, body: data });
  assert.equal(put.status, 200, "the PUT URL of the same presign still works");
  assert.equal(await served(p), sha256(data));
});

test("tus-js-client: the IETF draft (protocol ietf-draft-05, interop 6)", async () => {
  const p = await presign();
  const data = randomBytes(3 * 1024 * 1024 + 3);
  await upload(data, { endpoint: p.resumable.url, protocol: "ietf-draft-05", chunkSize: 1 << 20 });
  assert.equal(await served(p), sha256(data));
});

test("tus-js-client: the server killed with SIGKILL mid-upload and restarted; the upload resumes by itself", async () => {
  const p = await presign();
  const data = randomBytes(12 * 1024 * 1024);
  let killed = false;
  await upload(data, {
    endpoint: p.resumable.url, chunkSize: 1 << 20,
    retryDelays: [200, 500, 1000, 1000, 2000, 2000, 3000, 3000],
    onChunkComplete: (_c, accepted) => {
      if (!killed && accepted >= 4 << 20) {
        killed = true;
        server.kill("SIGKILL");
        setTimeout(() => start(), 300);
      }
    },
  });
  assert.ok(killed);
  assert.equal(await served(p), sha256(data));
});

test("tus-js-client: parallelUploads (concatenation) is refused clearly", async () => {
  const p = await presign();
  await assert.rejects(
    upload(randomBytes(1 << 20), { endpoint: p.resumable.url, parallelUploads: 2, retryDelays: [] }),
    (e) => { assert.match(String(e), /400|Upload-Concat|concatenat/i); return true; },
  );
});

test("the web app's vendored tus-js-client is the npm package's dist/tus.min.js, byte for byte", async () => {
  const { readFileSync } = await import("node:fs");
  const { createRequire } = await import("node:module");
  const dist = join(dirname(createRequire(import.meta.url).resolve("tus-js-client/package.json")), "dist/tus.min.js");
  const res = await fetch(`${base}/static/tus.min.js`);
  assert.equal(res.status, 200);
  assert.equal(sha256(Buffer.from(await res.arrayBuffer())), sha256(readFileSync(dist)));
});

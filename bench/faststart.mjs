// Fast start as a viewer feels it: Chromium, throttled through the DevTools protocol to
// 20 Mbit/s down with 50 ms latency, plays an index-last MP4 from flare twice in turn: the
// uploaded original (publicUrl) and flare's index-first copy (the players' first <source>).
// Each run has a fresh browser context (no cache). Measured in the page: from setting the
// video's src to its first frame (`loadeddata`), and a seek to 75 % (until `seeked`).
// Usage: node bench/faststart.mjs ORIGINAL_URL COPY_URL RUNS   (prints JSON)
import { chromium } from "../tests/browser/node_modules/playwright-core/index.mjs";

const [original, copy, runs = "3"] = process.argv.slice(2);
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--headless", "--no-sandbox", "--disable-gpu", "--autoplay-policy=no-user-gesture-required"] });

async function once(url) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send("Network.enable");
  await cdp.send("Network.setCacheDisabled", { cacheDisabled: true });
  await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 50, downloadThroughput: 20e6 / 8, uploadThroughput: 20e6 / 8 });
  let bytes = 0;
  cdp.on("Network.dataReceived", (e) => { bytes += e.encodedDataLength || e.dataLength; });
  await page.setContent("<video muted preload=metadata></video>");
  const result = await page.evaluate(async (src) => {
    const v = document.querySelector("video");
    const wait = (event) => new Promise((ok, fail) => {
      v.addEventListener(event, ok, { once: true });
      v.addEventListener("error", () => fail(new Error("cannot play")), { once: true });
    });
    const t0 = performance.now();
    const loaded = wait("loadeddata");
    v.src = src;
    await loaded;
    const firstFrame = performance.now() - t0;
    const t1 = performance.now();
    const seeked = wait("seeked");
    v.currentTime = v.duration * 0.75;
    await seeked;
    return { firstFrame, seek: performance.now() - t1 };
  }, url);
  await context.close();
  return { ...result, bytesBeforeSeekDone: bytes };
}

const out = { original: [], copy: [] };
for (let i = 0; i < Number(runs); i++) {
  out.original.push(await once(original));
  out.copy.push(await once(copy));
}
await browser.close();
console.log(JSON.stringify(out));

// The watch page: start at ?t=SECONDS, copy the page's link (or the link at the current time),
// and say so when the browser cannot play the codec (with the download link beside it).
(function () {
  "use strict";
  const video = document.querySelector(".watch-video");
  if (!video) return;
  const share = document.querySelector(".share");
  const status = document.querySelector(".share-status");
  const start = Number(new URLSearchParams(location.search).get("t"));
  if (start > 0) {
    const seek = () => { video.currentTime = Math.min(start, video.duration || start); };
    if (video.readyState >= 1) seek(); else video.addEventListener("loadedmetadata", seek, { once: true });
  }
  async function copy(text) {
    try {
      await navigator.clipboard.writeText(text);
      status.textContent = "Link copied.";
    } catch (_) {
      window.prompt("Copy the link:", text);
    }
    setTimeout(() => { status.textContent = ""; }, 3000);
  }
  const base = share.dataset.watch;
  share.querySelector(".share-link").addEventListener("click", () => copy(base));
  share.querySelector(".share-time").addEventListener("click", () => copy(`${base}?t=${Math.floor(video.currentTime)}`));
  // A QR code of the page's link, drawn here (no network): for a phone across the room.
  const qrButton = share.querySelector(".share-qr"), qr = document.querySelector(".qr");
  qrButton.addEventListener("click", () => {
    const open = qr.hidden;
    if (open && !qr.querySelector("svg")) {
      const code = qrcode(0, "M");
      code.addData(base);
      code.make();
      qr.querySelector(".qr-code").innerHTML = code.createSvgTag({ cellSize: 5, margin: 2, scalable: true, title: `QR code for ${base}` });
    }
    qr.hidden = !open;
    qrButton.setAttribute("aria-expanded", String(open));
  });
  // A codec the browser cannot decode: an error, or sound with no picture.
  const note = document.querySelector(".codec-message");
  video.addEventListener("error", () => { note.hidden = false; });
  // With <source>s, the error is the last one's: nothing listed could play.
  const lastSource = video.querySelector("source:last-of-type");
  if (lastSource) lastSource.addEventListener("error", () => { note.hidden = false; });
  video.addEventListener("loadeddata", () => { if (!video.videoWidth && note) note.hidden = false; });
})();

// The requests of the hosted Flare docs' node examples (create, list, update metadata, update
// embed settings) against FLARE_URL with FLARE_TOKEN. Prints one JSON body a line.
const base = process.env.FLARE_URL;
const id = process.env.VIDEO_ID;
const headers = { Authorization: `Bearer ${process.env.FLARE_TOKEN}`, "Content-Type": "application/json" };
const call = async (path, method, body) => {
  const res = await fetch(`${base}${path}`, { method, headers, body: body && JSON.stringify(body) });
  console.log(JSON.stringify(await res.json()));
};
await call("/api/video/create", "POST", { fileName: "demo.mp4", s3Key: id, source: "composite", width: 1920, height: 1080, duration: 120 });
await call("/api/videos", "GET");
await call(`/api/video/update/${id}`, "PATCH", { title: "Launch walkthrough", password: "secret123" });
await call(`/api/video/${id}/embed-settings`, "PATCH", {
  embedSettings: { playerTheme: "flare", accentColor: "#FF6702", embedBorderRadius: 12, autoplay: false, loop: false,
    showBranding: true, allowDownload: false,
    controlOptions: { showPlayButton: true, showProgress: true, showTime: true, showVolume: true, showSpeed: true,
      showFullscreen: true, showCaptions: true } }
});

// The embed player's controls. The page renders only the controls its settings allow; this
// wires whichever are there. No framework, no network access beyond the video itself.
(function () {
  "use strict";
  const player = document.querySelector(".player");
  const video = player && player.querySelector("video");
  if (!video) return;
  const $ = (sel) => player.querySelector(sel);
  const play = $(".ctl-play"), progress = $(".ctl-progress"), time = $(".ctl-time");
  const mute = $(".ctl-mute"), volume = $(".ctl-volume"), speed = $(".ctl-speed");
  const captions = $(".ctl-captions"), fullscreen = $(".ctl-fullscreen");
  const thumb = parseFloat(player.dataset.thumbnailTime || "0");
  const autoplay = player.dataset.autoplay === "true";
  let startedOnce = false;
  const PLAY = "M8 5v14l11-7z", PAUSE = "M6 5h4v14H6zm8 0h4v14h-4z";

  const fmt = (s) => {
    if (!isFinite(s)) return "0:00";
    s = Math.floor(s);
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = String(s % 60).padStart(2, "0");
    return h ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
  };
  const toggle = () => (video.paused ? video.play() : video.pause());

  // The poster frame: without a poster picture, show the frame at thumbnailTime until the
  // viewer presses play.
  video.addEventListener("loadedmetadata", () => {
    if (!autoplay && !video.poster && thumb > 0 && thumb < video.duration && video.currentTime === 0) video.currentTime = thumb;
    update();
  });
  video.addEventListener("play", () => {
    if (!startedOnce && !autoplay && !video.poster && thumb > 0) video.currentTime = 0;
    startedOnce = true;
  });

  function update() {
    if (progress && video.duration) progress.value = Math.round((video.currentTime / video.duration) * 1000);
    if (time) time.textContent = `${fmt(video.currentTime)} / ${fmt(video.duration)}`;
    if (play && play.dataset.state !== String(video.paused)) {
      play.dataset.state = String(video.paused);
      play.setAttribute("aria-label", video.paused ? "Play" : "Pause");
      play.querySelector("path").setAttribute("d", video.paused ? PLAY : PAUSE);
    }
    if (mute) mute.setAttribute("aria-label", video.muted ? "Unmute" : "Mute");
  }
  ["timeupdate", "play", "pause", "volumechange", "durationchange"].forEach((e) => video.addEventListener(e, update));

  if (play) play.addEventListener("click", toggle);
  video.addEventListener("click", toggle);
  if (progress) progress.addEventListener("input", () => {
    if (video.duration) video.currentTime = (progress.value / 1000) * video.duration;
  });
  if (mute) mute.addEventListener("click", () => { video.muted = !video.muted; });
  if (volume) volume.addEventListener("input", () => { video.volume = Number(volume.value); video.muted = video.volume === 0; });
  if (speed) speed.addEventListener("change", () => { video.playbackRate = Number(speed.value); });
  if (captions) captions.addEventListener("click", () => {
    const on = captions.getAttribute("aria-pressed") !== "true";
    captions.setAttribute("aria-pressed", String(on));
    for (const track of video.textTracks) track.mode = on ? "showing" : "hidden";
  });
  if (fullscreen) fullscreen.addEventListener("click", () => {
    if (document.fullscreenElement) document.exitFullscreen();
    else if (player.requestFullscreen) player.requestFullscreen();
  });
  // Keyboard: space or k plays and pauses, arrows seek 5 s, m mutes, f goes full screen.
  player.tabIndex = 0;
  player.addEventListener("keydown", (e) => {
    if (e.target.closest("input, select")) return;
    if (e.key === " " || e.key === "k") { e.preventDefault(); toggle(); }
    else if (e.key === "ArrowRight") video.currentTime = Math.min(video.duration || 0, video.currentTime + 5);
    else if (e.key === "ArrowLeft") video.currentTime = Math.max(0, video.currentTime - 5);
    else if (e.key === "m") video.muted = !video.muted;
    else if (e.key === "f" && fullscreen) fullscreen.click();
  });
  update();
})();

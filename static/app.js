// flare's web app: sign in with a token, upload with progress, manage the library.
// Plain JavaScript against the public API; the token lives in sessionStorage only.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const TOKEN_KEY = "flare.token";
  let token = sessionStorage.getItem(TOKEN_KEY);
  let nextCursor = null;

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  async function api(method, path, body) {
    let res;
    try {
      res = await fetch(path, {
        method,
        headers: Object.assign({ Authorization: `Bearer ${token}` }, body ? { "Content-Type": "application/json" } : {}),
        body: body ? JSON.stringify(body) : undefined,
      });
    } catch (e) {
      throw new ApiError(0, "network", "The server could not be reached. Check the connection and try again.");
    }
    const data = await res.json().catch(() => null);
    if (!res.ok || (data && data.success === false)) {
      const err = (data && data.error) || {};
      throw new ApiError(res.status, err.code || "http-" + res.status, err.message || res.statusText);
    }
    return data;
  }

  // What a person should read for each refusal, by the API's error code.
  function explain(err) {
    switch (err.code) {
      case "missing-token":
      case "invalid-token": return "That token is not valid. Check that it was copied whole, starting with flr_pat_.";
      case "token-revoked": return "That token has been revoked. Ask for a new one (flare token create).";
      case "token-expired": return "That token has expired. Ask for a new one (flare token create).";
      case "missing-scope": return `This token is not allowed to do that: ${err.message}.`;
      case "unsupported-file-type": return "This is not a supported video type. Use .mp4, .m4v, .mov, .webm, .mkv or .ogv.";
      case "too-large": return `The file is too large for this server: ${err.message}.`;
      case "url-expired": return "The upload link expired before the upload started. Try again.";
      case "upload-expired": return "The upload took longer than the server keeps unfinished uploads, and its bytes are gone. Upload the file again.";
      case "insufficient-storage": return "The server's disk is full. Nothing was stored; free some space and try again.";
      case "network": return err.message;
      default: return err.message ? err.message.charAt(0).toUpperCase() + err.message.slice(1) + "." : "Something went wrong.";
    }
  }

  // Screen readers hear an upload's start, end and failure, not every progress tick.
  const announce = (text) => { $("announce").textContent = text; };

  function toast(text) {
    const t = $("toast");
    t.textContent = text;
    t.classList.add("show");
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => t.classList.remove("show"), 3000);
  }

  const fmtBytes = (n) => {
    if (n == null) return "—";
    const units = ["bytes", "KB", "MB", "GB", "TB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return i === 0 ? `${n} bytes` : `${n.toFixed(n < 10 ? 1 : 0)} ${units[i]}`;
  };
  const fmtTime = (s) => {
    if (!isFinite(s)) return "…";
    s = Math.round(s);
    return s >= 3600 ? `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min` : s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`;
  };
  const fmtDate = (iso) => new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });

  // ---- Sign in and out ----

  function show(signedIn) {
    $("signin").hidden = signedIn;
    $("app").hidden = !signedIn;
    $("sign-out").hidden = !signedIn;
    if (signedIn) { loadLibrary(true); showUnfinished(); }
    else $("token").focus();
  }

  $("signin-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const entered = $("token").value.trim();
    $("signin-error").textContent = "";
    if (!entered.startsWith("flr_pat_")) {
      $("signin-error").textContent = "That does not look like a flare token: it should start with flr_pat_.";
      return;
    }
    token = entered;
    try {
      await api("GET", "/api/videos?limit=1");
    } catch (err) {
      token = null;
      $("signin-error").textContent = err.code === "missing-scope"
        ? "This token cannot list videos (it lacks the videos:read scope). Use a token with videos:read."
        : explain(err);
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, token);
    $("token").value = "";
    show(true);
  });

  $("sign-out").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    token = null;
    $("videos").replaceChildren();
    $("uploads").replaceChildren();
    $("unfinished").replaceChildren();
    show(false);
  });

  // ---- Upload ----

  // Names the server will take: no path separators, control characters or leading dots.
  const safeName = (name) =>
    name.replace(/[\/\\\u0000-\u001f\u007f]/g, "_").replace(/\.\.+/g, ".").replace(/^[.\s]+/, "").trim().slice(-200) || "video";

  // Uploads are resumable (tus, through tus-js-client): a dropped network resumes by itself,
  // and a reload or a closed tab leaves a record here so that picking the same file again (same
  // name, size and modification time) continues where the server's bytes end.
  const PENDING_KEY = "flare.uploads";
  const fingerprint = (file) => `${file.name}|${file.size}|${file.lastModified}`;
  const pendingAll = () => { try { return JSON.parse(localStorage.getItem(PENDING_KEY)) || {}; } catch (_) { return {}; } };
  const pendingSave = (all) => localStorage.setItem(PENDING_KEY, JSON.stringify(all));
  const pendingPut = (fp, rec) => { const all = pendingAll(); all[fp] = rec; pendingSave(all); };
  const pendingDrop = (fp) => { const all = pendingAll(); delete all[fp]; pendingSave(all); };
  const running = new Set(); // uploads in progress on this page, for the warning before leaving

  window.addEventListener("beforeunload", (e) => {
    if (running.size) { e.preventDefault(); e.returnValue = ""; }
  });

  function uploadRow(file) {
    const li = document.createElement("li");
    li.className = "upload";
    li.innerHTML = `<div class="row"><span class="upload-name"></span><span class="upload-buttons"><button type="button" class="secondary retry" hidden>Retry</button><button type="button" class="secondary cancel">Cancel</button></span></div>
      <progress max="100" value="0"></progress>
      <p class="upload-stats muted"></p><p class="upload-error error"></p>`;
    li.querySelector(".upload-name").textContent = file.name;
    li.querySelector("progress").setAttribute("aria-label", `Upload of ${file.name}`);
    $("uploads").prepend(li);
    return li;
  }

  // A refusal the server will repeat: retrying cannot help (tus-js-client retries the rest).
  const final = (err) => err.originalResponse && [400, 401, 403, 404, 410, 413, 415].includes(err.originalResponse.getStatus());

  function tusError(err) {
    const res = err.originalResponse;
    if (!res) return new ApiError(0, "network", "The connection dropped and did not come back.");
    let data = null;
    try { data = JSON.parse(res.getBody()); } catch (_) { /* not JSON */ }
    const e = data && data.error ? data.error : {};
    return new ApiError(res.getStatus(), e.code || "http-" + res.getStatus(), e.message || "the server refused the upload");
  }

  async function upload(file, forVideo) {
    const fp = fingerprint(file);
    document.querySelector(`#unfinished li[data-fp="${CSS.escape(fp)}"]`)?.remove();
    const li = uploadRow(file);
    const bar = li.querySelector("progress"), stats = li.querySelector(".upload-stats");
    const error = li.querySelector(".upload-error"), cancel = li.querySelector(".cancel"), retry = li.querySelector(".retry");
    let tusUpload = null, cancelled = false, videoId = forVideo || null;
    const say = (text) => { error.textContent = text; error.setAttribute("role", "alert"); };
    const fail = (text) => { stats.textContent = ""; say(text); li.classList.add("failed"); cancel.hidden = true; running.delete(li); announce(`${file.name} failed: ${text}`); };
    cancel.addEventListener("click", async () => {
      cancelled = true;
      running.delete(li);
      cancel.hidden = true; retry.hidden = true;
      stats.textContent = "Cancelled.";
      li.classList.add("cancelled");
      $("clear-finished").hidden = false;
      pendingDrop(fp);
      // DELETE ends the session and removes its bytes; then the record made for this file goes.
      if (tusUpload) await tusUpload.abort(true).catch(() => {});
      if (videoId && !forVideo) await api("DELETE", `/api/video/${videoId}`).catch(() => {});
      loadLibrary(true);
    });
    if (file.size === 0) return fail("This file is empty.");
    const name = safeName(file.name);
    running.add(li);
    announce(`Uploading ${file.name}.`);
    try {
      stats.textContent = "Preparing…";
      let rec = pendingAll()[fp];
      if (rec && forVideo && rec.videoId !== forVideo) rec = null;
      if (rec) {
        // The same file as an upload a reload or a closed tab interrupted: continue it.
        const head = await fetch(rec.url, { method: "HEAD", headers: { "Tus-Resumable": "1.0.0" } }).catch(() => null);
        if (!head || !head.ok) { pendingDrop(fp); rec = null; }
        else stats.textContent = `Resuming from ${fmtBytes(Number(head.headers.get("Upload-Offset")))}…`;
      }
      if (!rec) {
        if (!videoId) {
          const created = await api("POST", "/api/video/create", { fileName: name, title: file.name.replace(/\.[^.]+$/, "") || name });
          videoId = created.video.id;
        }
        const p = await api("POST", "/api/video/upload/presign", { videoId, fileName: name, size: file.size, resumable: true });
        rec = { videoId, name: file.name, size: file.size, url: p.resumable.url, chunkSize: p.resumable.chunkSize, until: p.resumable.expiresAt, made: !forVideo };
        pendingPut(fp, rec);
      }
      videoId = rec.videoId;
      if (cancelled) return;
      const started = performance.now();
      let speed = 0, lastT = started, lastB = null;
      await new Promise((resolve, reject) => {
        tusUpload = new tus.Upload(file, {
          uploadUrl: rec.url,
          chunkSize: rec.chunkSize,
          retryDelays: [0, 1000, 3000, 5000, 10000, 20000, 30000, 60000],
          storeFingerprintForResuming: false, // this page keeps its own records (PENDING_KEY)
          onShouldRetry: (err) => !final(err),
          onProgress: (sent, total) => {
            const now = performance.now();
            if (lastB === null) { lastB = sent; lastT = now; }
            if (now - lastT > 250 || sent === total) {
              const inst = ((sent - lastB) * 1000) / Math.max(1, now - lastT);
              speed = speed ? speed * 0.7 + inst * 0.3 : inst;
              lastT = now; lastB = sent;
            }
            const pct = total ? Math.floor((sent / total) * 100) : 0;
            bar.value = pct;
            if (navigator.onLine) error.textContent = "";
            stats.textContent = `${fmtBytes(sent)} of ${fmtBytes(total)} · ${pct} % · ${fmtBytes(speed)}/s · ${fmtTime((total - sent) / speed)} left`;
          },
          onError: reject,
          onSuccess: resolve,
        });
        // Offline: say so, and go on by itself when the network is back.
        tusUpload._flareOffline = () => { if (!cancelled) { say("The network is gone. The upload continues when it is back."); } };
        window.addEventListener("offline", tusUpload._flareOffline);
        window.addEventListener("online", () => { if (!cancelled && running.has(li)) error.textContent = ""; });
        tusUpload.start();
      }).finally(() => window.removeEventListener("offline", tusUpload._flareOffline));
      pendingDrop(fp);
      running.delete(li);
      bar.value = 100;
      const secs = (performance.now() - started) / 1000;
      stats.textContent = `Done · ${fmtBytes(file.size)} in ${fmtTime(secs)} · 100 %`;
      li.classList.add("done");
      cancel.hidden = true;
      announce(`${file.name} uploaded.`);
      $("clear-finished").hidden = false;
      // No poster coming from the server (no ffmpeg there): send one grabbed here.
      try {
        const made = (await api("GET", `/api/video/${videoId}`)).video;
        if (!made.posterUrl && !(made.jobs || []).length) {
          const poster = await grabPoster(file);
          if (poster) await putPoster(videoId, poster);
        }
      } catch (_) { /* the video is stored; a poster can be set later from its menu */ }
      loadLibrary(true);
    } catch (raw) {
      if (cancelled) return;
      const err = raw instanceof ApiError ? raw : tusError(raw);
      if (err.code === "network" && !navigator.onLine) {
        // Offline for longer than the retries: go on by itself once the network is back.
        stats.textContent = "";
        say("The network is gone. The upload continues when it is back; what was sent is kept.");
        running.delete(li);
        window.addEventListener("online", () => { if (!cancelled) { li.remove(); upload(file, forVideo); } }, { once: true });
        return;
      }
      if (err.code === "network" || err.status >= 500 || err.status === 423 || err.status === 409) {
        // Kept: the bytes the server holds stay, and Retry (or the same file later) continues.
        stats.textContent = "";
        say(`${explain(err)} What was sent is kept: press Retry, or pick the same file again later.`);
        retry.hidden = false;
        retry.onclick = () => { li.remove(); upload(file, forVideo); };
        running.delete(li);
        return;
      }
      pendingDrop(fp);
      // The record made for this file goes first, so no refusal is shown while it still exists.
      if (videoId && !forVideo) await api("DELETE", `/api/video/${videoId}`).catch(() => {});
      fail(explain(err));
    }
  }

  // Uploads a reload or a closed tab interrupted, from this browser's records.
  async function showUnfinished() {
    const list = $("unfinished");
    list.replaceChildren();
    for (const [fp, rec] of Object.entries(pendingAll())) {
      const li = document.createElement("li");
      li.className = "upload unfinished";
      li.dataset.fp = fp;
      li.innerHTML = `<div class="row"><span class="upload-name"></span><span class="upload-buttons"><button type="button" class="secondary resume">Resume</button><button type="button" class="secondary discard">Delete</button></span></div>
        <progress max="100" value="0"></progress><p class="upload-stats muted"></p>`;
      li.querySelector(".upload-name").textContent = rec.name;
      li.querySelector("progress").setAttribute("aria-label", `Unfinished upload of ${rec.name}`);
      const stats = li.querySelector(".upload-stats");
      list.append(li);
      const head = await fetch(rec.url, { method: "HEAD", headers: { "Tus-Resumable": "1.0.0" } }).catch(() => null);
      if (head && head.ok) {
        const offset = Number(head.headers.get("Upload-Offset"));
        li.querySelector("progress").value = Math.floor((offset / rec.size) * 100);
        stats.textContent = `Interrupted at ${fmtBytes(offset)} of ${fmtBytes(rec.size)}. Pick the same file to resume, or delete it.`;
      } else {
        li.querySelector(".resume").hidden = true;
        stats.textContent = "Interrupted, and the server no longer holds its bytes (its time ran out). Delete it, or upload the file again.";
      }
      li.querySelector(".resume").addEventListener("click", () => { resumeTarget = fp; files.click(); });
      li.querySelector(".discard").addEventListener("click", async () => {
        pendingDrop(fp);
        li.remove();
        await fetch(rec.url, { method: "DELETE", headers: { "Tus-Resumable": "1.0.0" } }).catch(() => {});
        if (rec.made) await api("DELETE", `/api/video/${rec.videoId}`).catch(() => {});
        loadLibrary(true);
      });
    }
  }

  let resumeTarget = null, finishTarget = null;
  const files = $("files"), drop = $("drop");
  files.addEventListener("change", () => {
    const picked = [...files.files];
    files.value = "";
    if (resumeTarget && picked.length === 1 && fingerprint(picked[0]) !== resumeTarget) {
      toast("That is not the same file (name, size and date must match). It is uploaded as a new video.");
    }
    resumeTarget = null;
    picked.forEach((f) => upload(f));
  });
  $("finish-file").addEventListener("change", (e) => {
    const [file] = e.target.files;
    e.target.value = "";
    if (file && finishTarget) upload(file, finishTarget);
    finishTarget = null;
  });
  // The whole zone is one button (no control nested in it): a click or Enter opens the picker.
  drop.addEventListener("click", () => files.click());
  $("clear-finished").addEventListener("click", () => {
    document.querySelectorAll("#uploads .upload.done, #uploads .upload.cancelled").forEach((li) => li.remove());
    $("clear-finished").hidden = true;
  });
  drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); files.click(); } });
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); [...e.dataTransfer.files].forEach((f) => upload(f)); });

  // ---- Library ----

  // Rows are updated in place: an open editor or menu survives another upload finishing.
  let jobsTimer = null;
  async function loadLibrary(reset) {
    const status = $("library-status");
    try {
      const page = await api("GET", `/api/videos?limit=${reset ? Math.max(20, $("videos").children.length) : 20}${!reset && nextCursor ? `&cursor=${encodeURIComponent(nextCursor)}` : ""}`);
      const list = $("videos");
      const known = new Map([...list.children].map((li) => [li.dataset.id, li]));
      const seen = new Set();
      for (const v of page.videos) {
        let li = known.get(v.id);
        if (li) fill(li, v); else li = videoItem(v);
        seen.add(v.id);
        list.append(li);
      }
      if (reset) for (const [id, li] of known) if (!seen.has(id)) li.remove();
      nextCursor = page.nextCursor;
      $("more").hidden = !nextCursor;
      arrange();
      // While posters or renditions are being made, look again every few seconds.
      clearTimeout(jobsTimer);
      if (page.videos.some((v) => (v.jobs || []).some((j) => j.state === "queued" || j.state === "running"))) {
        jobsTimer = setTimeout(() => { if (token) loadLibrary(true); }, 3000);
      }
    } catch (err) {
      status.textContent = explain(err);
    }
  }

  // Search by title and sort, over the videos loaded.
  function arrange() {
    const list = $("videos"), q = $("search").value.trim().toLowerCase();
    const key = {
      new: (v) => -Date.parse(v.createdAt), old: (v) => Date.parse(v.createdAt),
      title: (v) => (v.title || v.fileName).toLowerCase(), size: (v) => -(v.size || 0), duration: (v) => -(v.duration || 0),
    }[$("sort").value];
    const items = [...list.children].sort((a, b) => { const x = key(a.video), y = key(b.video); return x < y ? -1 : x > y ? 1 : 0; });
    let shown = 0;
    for (const li of items) {
      li.hidden = Boolean(q) && !(li.video.title || li.video.fileName).toLowerCase().includes(q);
      if (!li.hidden) shown++;
      list.append(li);
    }
    $("library-status").textContent = !list.children.length ? "No videos yet. Upload one above." : shown ? "" : `No title contains “${q}”.`;
    picked();
  }
  $("search").addEventListener("input", arrange);
  $("sort").addEventListener("change", arrange);

  // Select several, delete them after one confirmation.
  function picked() {
    const n = document.querySelectorAll("#videos .video:not([hidden]) .pick:checked").length;
    $("delete-selected").hidden = n === 0;
    $("delete-selected").textContent = `Delete selected (${n})`;
    return n;
  }
  $("videos").addEventListener("change", (e) => { if (e.target.classList.contains("pick")) picked(); });
  $("delete-selected").addEventListener("click", async () => {
    const rows = [...document.querySelectorAll("#videos .video:not([hidden])")].filter((li) => li.querySelector(".pick").checked);
    $("bulk-count").textContent = String(rows.length);
    if ((await ask($("bulk-dialog"))) !== "ok") return;
    let failed = 0;
    for (const li of rows) {
      try { await api("DELETE", `/api/video/${li.dataset.id}`); li.remove(); } catch (_) { failed++; }
    }
    toast(failed ? `${rows.length - failed} deleted; ${failed} could not be.` : `${rows.length} deleted.`);
    arrange();
  });
  $("more").addEventListener("click", () => loadLibrary(false));
  window.addEventListener("online", () => { if (token) loadLibrary(true); });
  $("refresh").addEventListener("click", () => loadLibrary(true));

  const links = (v) => {
    const origin = location.origin;
    return {
      public: v.publicUrl,
      watch: `${origin}/v/${v.id}`,
      // Responsive: the wrapper keeps the video's shape at any width.
      embed: `<div style="position:relative;aspect-ratio:${(v.media && v.media.width && v.media.height) ? `${v.media.width}/${v.media.height}` : "16/9"};max-width:100%"><iframe src="${origin}/embed/${v.id}" style="position:absolute;inset:0;width:100%;height:100%;border:0" allow="fullscreen" title="${(v.title || v.fileName).replace(/"/g, "&quot;")}"></iframe></div>`,
    };
  };

  function fill(li, v) {
    li.dataset.id = v.id;
    const title = li.querySelector(".video-title");
    title.textContent = v.title || v.fileName;
    title.href = `/v/${v.id}`;
    const status = li.querySelector(".status");
    status.textContent = v.status;
    status.className = `badge status ${v.status}`;
    li.querySelector(".locked").hidden = !v.passwordProtected;
    const m = v.media || {};
    const clock = (s) => s >= 3600 ? `${Math.floor(s / 3600)}:${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}:${String(Math.round(s % 60)).padStart(2, "0")}` : `${Math.floor(s / 60)}:${String(Math.round(s % 60)).padStart(2, "0")}`;
    const parts = [fmtBytes(v.size)];
    if (v.duration) parts.push(clock(v.duration));
    if (m.width && m.height) parts.push(`${m.width}×${m.height}`);
    if (m.videoCodec) parts.push(m.videoCodec.toUpperCase());
    if (v.captions) parts.push(`captions: ${v.captions.map((c) => c.lang).join(", ")}`);
    parts.push(fmtDate(v.createdAt), v.id);
    li.querySelector(".video-meta").textContent = parts.join(" · ");
    const thumb = li.querySelector(".thumb"), img = thumb.querySelector("img");
    thumb.href = `/v/${v.id}`;
    if (v.posterUrl) { if (img.getAttribute("src") !== v.posterUrl) img.src = v.posterUrl; img.hidden = false; }
    else { img.removeAttribute("src"); img.hidden = true; }
    thumb.querySelector(".thumb-duration").textContent = v.duration ? clock(v.duration) : "";
    const jobs = v.jobs || [], rendition = jobs.find((j) => j.kind === "rendition");
    const warn = li.querySelector(".codec-note");
    warn.hidden = m.playable !== false || (v.renditions || []).some((r) => r.status === "ready");
    warn.textContent = rendition && rendition.state !== "failed"
      ? `Browsers may not play this file (${m.videoCodec || "unknown codec"}); a playable copy is being made.`
      : `Browsers may not play this file (${m.videoCodec || "unknown codec"}); viewers can still download it.`;
    // Poster and rendition jobs, while they run or when they failed.
    const note = li.querySelector(".job-note");
    const what = { poster: "poster", rendition: "playable copy" };
    const busy = jobs.filter((j) => j.state === "queued" || j.state === "running");
    const failedJob = jobs.find((j) => j.state === "failed" || (j.state === "queued" && j.error));
    note.classList.toggle("failed", Boolean(failedJob) && !busy.some((j) => j.state === "running"));
    if (busy.some((j) => j.state === "running")) {
      const j = busy.find((x) => x.state === "running");
      note.textContent = `Making the ${what[j.kind]}${j.kind === "rendition" ? `: ${Math.round(j.progress * 100)} %` : "…"}`;
    } else if (failedJob) {
      note.textContent = `The ${what[failedJob.kind]} could not be made${failedJob.state === "queued" ? " (trying again soon)" : ""}: ${failedJob.error}`;
    } else if (busy.length) {
      note.textContent = `Waiting to make the ${busy.map((j) => what[j.kind]).join(" and ")}.`;
    } else note.textContent = "";
    note.hidden = !note.textContent;
    li.querySelector('[data-action="remove-poster"]').hidden = !v.posterUrl;
    li.querySelector('[data-action="poster"]').disabled = v.status !== "ready";
    li.querySelector('[data-action="copy-public"]').disabled = !v.publicUrl;
    // A pending video with no upload running here: say so, and offer to finish it.
    const uploading = Object.values(pendingAll()).some((r) => r.videoId === v.id);
    li.querySelector(".pending-note").hidden = v.status !== "pending" || uploading;
    li.video = v;
  }

  function videoItem(v) {
    const li = $("video-template").content.firstElementChild.cloneNode(true);
    fill(li, v);
    li.addEventListener("click", (e) => {
      const button = e.target.closest("button[data-action]");
      if (button) {
        const menu = button.closest("details.menu");
        if (menu && button.dataset.action !== "embed") menu.open = false;
        act(li, button.dataset.action, button);
      }
    });
    return li;
  }

  async function copy(text, what) {
    try {
      await navigator.clipboard.writeText(text);
      toast(`${what} copied.`);
    } catch (_) {
      window.prompt(`Copy the ${what.toLowerCase()}:`, text);
    }
  }

  // A dialog's result: the button value, after `check` accepts it (or "cancel").
  function ask(dialog, check) {
    return new Promise((resolve) => {
      const form = dialog.querySelector("form");
      const err = dialog.querySelector(".error");
      if (err) err.textContent = "";
      const onSubmit = async (e) => {
        const value = e.submitter ? e.submitter.value : "ok";
        if (value === "cancel" || !check) return;
        e.preventDefault();
        try {
          await check(value);
          dialog.close(value);
        } catch (ex) {
          if (err) err.textContent = explain(ex);
        }
      };
      form.addEventListener("submit", onSubmit);
      dialog.addEventListener("close", () => { form.removeEventListener("submit", onSubmit); resolve(dialog.returnValue); }, { once: true });
      dialog.returnValue = "cancel";
      dialog.showModal();
    });
  }

  // A poster picture chosen for one video.
  let posterTarget = null;
  $("poster-file").addEventListener("change", async (e) => {
    const file = e.target.files[0], li = posterTarget;
    e.target.value = "";
    if (!file || !li) return;
    try {
      const r = await putPoster(li.video.id, file);
      fill(li, r.video);
      toast("Poster set.");
    } catch (err) { toast(explain(err)); }
  });

  async function putPoster(id, blob) {
    let res;
    try {
      res = await fetch(`/api/video/${id}/poster`, { method: "PUT", headers: { Authorization: `Bearer ${token}`, "Content-Type": blob.type || "image/jpeg" }, body: blob });
    } catch (_) {
      throw new ApiError(0, "network", "The server could not be reached. Check the connection and try again.");
    }
    const data = await res.json().catch(() => null);
    if (!res.ok) { const e = (data && data.error) || {}; throw new ApiError(res.status, e.code || "http-" + res.status, e.message || res.statusText); }
    return data;
  }

  // Without ffmpeg on the server, the poster is a frame of the local file, a tenth of the way
  // in, drawn on a canvas here. Null when this browser cannot decode the file (HEVC in Chromium).
  async function grabPoster(file) {
    const url = URL.createObjectURL(file);
    const video = document.createElement("video");
    video.muted = true;
    video.preload = "auto";
    const once = (event) => new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("timeout")), 15000);
      video.addEventListener(event, () => { clearTimeout(timer); resolve(); }, { once: true });
      video.addEventListener("error", () => { clearTimeout(timer); reject(new Error("cannot decode")); }, { once: true });
    });
    try {
      const loaded = once("loadeddata");
      video.src = url;
      await loaded;
      if (!video.videoWidth) return null;
      const seeked = once("seeked");
      video.currentTime = Number.isFinite(video.duration) ? video.duration * 0.1 : 0;
      await seeked;
      const w = Math.min(1280, video.videoWidth), h = Math.round((video.videoHeight * w) / video.videoWidth);
      const canvas = document.createElement("canvas");
      canvas.width = w; canvas.height = h;
      canvas.getContext("2d").drawImage(video, 0, 0, w, h);
      return await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.85));
    } catch (_) {
      return null;
    } finally {
      video.removeAttribute("src");
      video.load();
      URL.revokeObjectURL(url);
    }
  }

  async function act(li, action, button) {
    const v = li.video;
    const l = links(v);
    try {
      if (action === "copy-public") await copy(l.public, "File link");
      else if (action === "copy-watch") await copy(l.watch, "Watch link");
      else if (action === "copy-embed") await copy(l.embed, "Embed code");
      else if (action === "finish") { finishTarget = v.id; $("finish-file").click(); }
      else if (action === "rename") {
        $("rename-input").value = v.title || "";
        await ask($("rename-dialog"), async () => {
          const r = await api("PATCH", `/api/video/update/${v.id}`, { title: $("rename-input").value });
          fill(li, r.video);
          toast("Renamed.");
        });
      } else if (action === "password") {
        $("password-input").value = "";
        $("password-clear").hidden = !v.passwordProtected;
        await ask($("password-dialog"), async (value) => {
          if (value === "ok" && !$("password-input").value) throw new ApiError(400, "invalid-field", "enter a password, or remove it");
          const password = value === "clear" ? null : $("password-input").value;
          const r = await api("PATCH", `/api/video/update/${v.id}`, { password });
          fill(li, r.video);
          toast(password === null ? "Password removed." : "Password set.");
        });
      } else if (action === "captions") {
        await captionsDialog(li);
      } else if (action === "poster") {
        posterTarget = li;
        $("poster-file").click();
      } else if (action === "remove-poster") {
        const r = await api("DELETE", `/api/video/${v.id}/poster`);
        fill(li, r.video);
        toast((r.video.jobs || []).some((j) => j.kind === "poster" && j.state !== "done") ? "Poster removed; one is being made from the video." : "Poster removed.");
        loadLibrary(true);
      } else if (action === "delete") {
        $("delete-name").textContent = v.title || v.fileName;
        if ((await ask($("delete-dialog"))) === "ok") {
          await api("DELETE", `/api/video/${v.id}`);
          li.remove();
          toast("Deleted.");
          if (!$("videos").children.length) $("library-status").textContent = "No videos yet. Upload one above.";
        }
      } else if (action === "embed") {
        const editor = li.querySelector(".embed-editor");
        const open = editor.hidden;
        button.setAttribute("aria-expanded", String(open));
        editor.hidden = !open;
        if (open) await embedEditor(editor, v);
        else editor.replaceChildren();
      }
    } catch (err) {
      toast(explain(err));
    }
  }

  // ---- Captions: one file per language ----

  function captionsList(li) {
    const list = $("captions-list");
    list.replaceChildren();
    for (const c of li.video.captions || []) {
      const item = document.createElement("li");
      item.innerHTML = `<span></span> <button type="button" class="link" formnovalidate>Remove</button>`;
      item.querySelector("span").textContent = `${c.label} (${c.lang})`;
      item.querySelector("button").addEventListener("click", async () => {
        try {
          await api("DELETE", `/api/video/${li.video.id}/captions/${encodeURIComponent(c.lang)}`);
          fill(li, (await api("GET", `/api/video/${li.video.id}`)).video);
          captionsList(li);
          toast("Captions removed.");
        } catch (err) { toast(explain(err)); }
      });
      list.append(item);
    }
    if (!list.children.length) list.innerHTML = `<li class="muted">No captions yet.</li>`;
  }

  async function captionsDialog(li) {
    captionsList(li);
    $("captions-file").value = "";
    await ask($("captions-dialog"), async () => {
      const file = $("captions-file").files[0];
      const lang = $("captions-lang").value.trim();
      if (!file) throw new ApiError(400, "invalid-field", "choose a .vtt or .srt file");
      const label = $("captions-label").value.trim();
      const res = await fetch(`/api/video/${li.video.id}/captions/${encodeURIComponent(lang)}${label ? `?label=${encodeURIComponent(label)}` : ""}`, {
        method: "PUT",
        headers: { Authorization: `Bearer ${token}`, "Content-Type": file.name.endsWith(".srt") ? "application/x-subrip" : "text/vtt" },
        body: file,
      });
      const data = await res.json().catch(() => null);
      if (!res.ok) throw new ApiError(res.status, data?.error?.code, data?.error?.message || res.statusText);
      fill(li, (await api("GET", `/api/video/${li.video.id}`)).video);
      toast("Captions added.");
    });
  }

  // ---- Embed settings, saved on each change, with a live preview ----

  const CONTROLS = [["showPlayButton", "Play button"], ["showProgress", "Progress bar"], ["showTime", "Time"], ["showVolume", "Volume"],
    ["showSpeed", "Speed"], ["showFullscreen", "Full screen"], ["showCaptions", "Captions"]];
  const BEHAVIOUR = [["autoplay", "Autoplay (muted)"], ["loop", "Loop"], ["muted", "Start muted"], ["showBranding", "flare branding"], ["allowDownload", "Allow download"]];

  async function embedEditor(editor, v) {
    const { embedSettings: s } = await api("GET", `/api/video/${v.id}/embed-settings`);
    const id = (k) => `${v.id}-${k}`;
    const check = ([k, label], checked) =>
      `<label class="check"><input type="checkbox" id="${id(k)}" data-key="${k}" ${checked ? "checked" : ""}> ${label}</label>`;
    editor.innerHTML = `
      <form class="embed-form">
        <fieldset><legend>Look</legend>
          <label for="${id("playerTheme")}">Theme</label>
          <select id="${id("playerTheme")}" data-key="playerTheme">${["flare", "minimal", "custom"].map((t) => `<option ${t === s.playerTheme ? "selected" : ""}>${t}</option>`).join("")}</select>
          <label for="${id("accentColor")}">Accent colour</label>
          <input type="color" id="${id("accentColor")}" data-key="accentColor" value="${s.accentColor}">
          <label for="${id("embedBorderRadius")}">Corner radius (px)</label>
          <input type="number" min="0" max="24" step="1" id="${id("embedBorderRadius")}" data-key="embedBorderRadius" value="${s.embedBorderRadius}">
          <label for="${id("thumbnailTime")}">Poster frame at (s)</label>
          <input type="number" min="0" step="0.1" id="${id("thumbnailTime")}" data-key="thumbnailTime" value="${s.thumbnailTime}">
        </fieldset>
        <fieldset><legend>Controls</legend>${CONTROLS.map((c) => check(c, s.controlOptions[c[0]])).join("")}</fieldset>
        <fieldset><legend>Behaviour</legend>${BEHAVIOUR.map((b) => check(b, s[b[0]])).join("")}</fieldset>
        <p class="error" role="alert"></p>
      </form>
      <div class="preview"><p class="muted">Preview${v.passwordProtected ? " — the video is password-protected, so it asks for the password as a viewer's browser will" : ""}</p><iframe title="Embed preview" src="/embed/${v.id}" allow="fullscreen"></iframe></div>`;
    const form = editor.querySelector("form"), frame = editor.querySelector("iframe"), err = editor.querySelector(".error");
    form.addEventListener("change", async (e) => {
      const input = e.target, key = input.dataset.key;
      if (!key) return;
      let value = input.type === "checkbox" ? input.checked : input.type === "number" ? Number(input.value) : input.value;
      const patch = CONTROLS.some(([k]) => k === key) ? { controlOptions: { [key]: value } } : { [key]: value };
      err.textContent = "";
      try {
        await api("PATCH", `/api/video/${v.id}/embed-settings`, { embedSettings: patch });
        frame.src = `/embed/${v.id}?t=${Date.now()}`;
      } catch (ex) {
        err.textContent = explain(ex);
      }
    });
  }

  show(Boolean(token));
})();

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
      case "insufficient-storage": return "The server's disk is full. Nothing was stored; free some space and try again.";
      case "network": return err.message;
      default: return err.message ? err.message.charAt(0).toUpperCase() + err.message.slice(1) + "." : "Something went wrong.";
    }
  }

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
    if (signedIn) loadLibrary(true);
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
    show(false);
  });

  // ---- Upload ----

  // Names the server will take: no path separators, control characters or leading dots.
  const safeName = (name) =>
    name.replace(/[\/\\\u0000-\u001f\u007f]/g, "_").replace(/\.\.+/g, ".").replace(/^[.\s]+/, "").trim().slice(-200) || "video";

  function uploadRow(file) {
    const li = document.createElement("li");
    li.className = "upload";
    li.innerHTML = `<div class="row"><span class="upload-name"></span><button type="button" class="secondary cancel">Cancel</button></div>
      <progress max="100" value="0"></progress>
      <p class="upload-stats muted"></p><p class="upload-error error" role="alert"></p>`;
    li.querySelector(".upload-name").textContent = file.name;
    li.querySelector("progress").setAttribute("aria-label", `Upload of ${file.name}`);
    $("uploads").prepend(li);
    return li;
  }

  async function upload(file) {
    const li = uploadRow(file);
    const bar = li.querySelector("progress"), stats = li.querySelector(".upload-stats");
    const error = li.querySelector(".upload-error"), cancel = li.querySelector(".cancel");
    let xhr = null, cancelled = false, videoId = null;
    const fail = (text) => { stats.textContent = ""; error.textContent = text; li.classList.add("failed"); cancel.hidden = true; };
    cancel.addEventListener("click", async () => {
      cancelled = true;
      if (xhr) xhr.abort();
      cancel.hidden = true;
      stats.textContent = "Cancelled.";
      if (videoId) await api("DELETE", `/api/video/${videoId}`).catch(() => {});
    });
    if (file.size === 0) return fail("This file is empty.");
    const name = safeName(file.name);
    try {
      stats.textContent = "Preparing…";
      const created = await api("POST", "/api/video/create", { fileName: name, title: file.name.replace(/\.[^.]+$/, "") || name });
      videoId = created.video.id;
      const p = await api("POST", "/api/video/upload/presign", { videoId, fileName: name, size: file.size });
      if (cancelled) return;
      const started = performance.now();
      let speed = 0, lastT = started, lastB = 0;
      const result = await new Promise((resolve, reject) => {
        xhr = new XMLHttpRequest();
        xhr.open("PUT", p.uploadUrl);
        xhr.setRequestHeader("Content-Type", p.headers["Content-Type"]);
        xhr.upload.onprogress = (e) => {
          const now = performance.now();
          if (now - lastT > 250 || e.loaded === e.total) {
            const inst = ((e.loaded - lastB) * 1000) / Math.max(1, now - lastT);
            speed = speed ? speed * 0.7 + inst * 0.3 : inst;
            lastT = now; lastB = e.loaded;
          }
          const pct = e.total ? Math.floor((e.loaded / e.total) * 100) : 0;
          bar.value = pct;
          stats.textContent = `${fmtBytes(e.loaded)} of ${fmtBytes(e.total)} · ${pct} % · ${fmtBytes(speed)}/s · ${fmtTime((e.total - e.loaded) / speed)} left`;
        };
        xhr.onload = () => {
          let data = null;
          try { data = JSON.parse(xhr.responseText); } catch (_) { /* not JSON */ }
          if (xhr.status === 200 && data && data.success) resolve(data);
          else reject(new ApiError(xhr.status, data && data.error ? data.error.code : "http-" + xhr.status, data && data.error ? data.error.message : xhr.statusText));
        };
        xhr.onerror = () => reject(new ApiError(0, "network", "The connection dropped during the upload. Nothing was stored; try again."));
        xhr.onabort = () => reject(new ApiError(0, "cancelled", "Cancelled."));
        xhr.send(file); // The File itself: the browser streams it from disk.
      });
      bar.value = 100;
      const secs = (performance.now() - started) / 1000;
      stats.textContent = `Done · ${fmtBytes(result.size)} in ${fmtTime(secs)} · 100 %`;
      li.classList.add("done");
      cancel.hidden = true;
      loadLibrary(true);
    } catch (err) {
      if (cancelled || err.code === "cancelled") return;
      // The record made for this file goes first, so no refusal is shown while it still exists.
      if (videoId) await api("DELETE", `/api/video/${videoId}`).catch(() => {});
      fail(explain(err));
    }
  }

  const files = $("files"), drop = $("drop");
  files.addEventListener("change", () => { [...files.files].forEach(upload); files.value = ""; });
  drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); files.click(); } });
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); [...e.dataTransfer.files].forEach(upload); });

  // ---- Library ----

  async function loadLibrary(reset) {
    const status = $("library-status");
    try {
      const page = await api("GET", `/api/videos?limit=20${!reset && nextCursor ? `&cursor=${encodeURIComponent(nextCursor)}` : ""}`);
      if (reset) $("videos").replaceChildren();
      page.videos.forEach((v) => $("videos").append(videoItem(v)));
      nextCursor = page.nextCursor;
      $("more").hidden = !nextCursor;
      status.textContent = $("videos").children.length ? "" : "No videos yet. Upload one above.";
    } catch (err) {
      status.textContent = explain(err);
    }
  }
  $("more").addEventListener("click", () => loadLibrary(false));
  $("refresh").addEventListener("click", () => loadLibrary(true));

  const links = (v) => {
    const origin = location.origin;
    return {
      public: v.publicUrl,
      watch: `${origin}/v/${v.id}`,
      embed: `<iframe src="${origin}/embed/${v.id}" width="640" height="360" allow="fullscreen" style="border:0"></iframe>`,
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
    li.querySelector(".video-meta").textContent = `${fmtBytes(v.size)} · ${fmtDate(v.createdAt)} · ${v.id}`;
    li.querySelector('[data-action="copy-public"]').disabled = !v.publicUrl;
    li.video = v;
  }

  function videoItem(v) {
    const li = $("video-template").content.firstElementChild.cloneNode(true);
    fill(li, v);
    li.addEventListener("click", (e) => {
      const button = e.target.closest("button[data-action]");
      if (button) act(li, button.dataset.action, button);
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

  async function act(li, action, button) {
    const v = li.video;
    const l = links(v);
    try {
      if (action === "copy-public") await copy(l.public, "File link");
      else if (action === "copy-watch") await copy(l.watch, "Watch link");
      else if (action === "copy-embed") await copy(l.embed, "Embed code");
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

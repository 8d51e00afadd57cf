//! Posters and renditions: with ffmpeg, each upload gets a poster, and an original that common
//! browsers cannot play (HEVC) or that is heavier than `max_stream_bitrate` gets an H.264 MP4
//! rendition, index first; the original is served byte for byte all the same. Jobs are visible,
//! survive a server killed mid-job, and their files are served under the video's rules,
//! replaced with a new upload, deleted with the video, and known to fsck. Without ffmpeg,
//! nothing is queued and a poster can be sent through the API.

use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::helpers::*;

fn hevc(dir: &Path) -> Vec<u8> {
    ffmpeg_make(
        dir,
        "phone.mov",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=duration=4:size=640x360:rate=25",
            "-f",
            "lavfi",
            "-i",
            "sine=duration=4",
            "-c:v",
            "libx265",
            "-tag:v",
            "hvc1",
            "-x265-params",
            "log-level=error",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
        ],
    )
}

fn h264(dir: &Path, name: &str, bitrate: &str) -> Vec<u8> {
    ffmpeg_make(
        dir,
        name,
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=duration=4:size=640x360:rate=25",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-b:v",
            bitrate,
            "-minrate",
            bitrate,
            "-maxrate",
            bitrate,
            "-bufsize",
            "100k",
            "-x264-params",
            "nal-hrd=cbr",
            "-movflags",
            "+faststart",
        ],
    )
}

fn with_ffmpeg(r: &mut flare::config::RawSettings) {
    r.ffmpeg_path = Some("ffmpeg".into());
}

/// Uploads `bytes` as `name` through presign and PUT; the video's id.
fn upload_to(app: &TestApp, id: &str, name: &str, bytes: &[u8]) {
    let p = app.presign(json!({ "videoId": id, "fileName": name }));
    let put = app.put(
        p["uploadUrl"].as_str().unwrap(),
        p["headers"]["Content-Type"].as_str().unwrap(),
        bytes,
    );
    assert_eq!(put.status, 200, "{}", put.text());
}

fn video(app: &TestApp, id: &str) -> Value {
    let res = app.api("GET", &format!("/api/video/{id}"), None);
    assert_eq!(res.status, 200, "{}", res.text());
    crate::openapi::check("GET", "/api/video/{id}", &res);
    res.json()["video"].clone()
}

/// The video once none of its jobs is queued or running (at most two minutes).
fn settled(app: &TestApp, id: &str) -> Value {
    let start = Instant::now();
    loop {
        let v = video(app, id);
        let busy = v["jobs"].as_array().is_some_and(|jobs| {
            jobs.iter()
                .any(|j| j["state"] == "queued" || j["state"] == "running")
        });
        if !busy {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "jobs still busy: {}",
            v["jobs"]
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn get(app: &TestApp, url: &str, headers: &[(&str, &str)]) -> Response {
    app.send("GET", &app.local(url), headers, b"")
}

fn ffprobe(path: &Path, entries: &str) -> String {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", entries, "-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe comes with ffmpeg");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn an_hevc_upload_gets_a_poster_and_an_h264_rendition_and_keeps_its_original() {
    let app = TestApp::spawn_with(with_ffmpeg);
    let dir = tempfile::tempdir().unwrap();
    let original = hevc(dir.path());
    let id = app.create_video("phone.mov");
    upload_to(&app, &id, "phone.mov", &original);
    let v = settled(&app, &id);
    let jobs: Vec<(String, String)> = v["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            (
                j["kind"].as_str().unwrap().into(),
                j["state"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        jobs,
        [
            ("poster".into(), "done".into()),
            ("rendition".into(), "done".into())
        ],
        "{v}"
    );

    // The poster: a JPEG, served with the media headers.
    let poster = get(&app, v["posterUrl"].as_str().unwrap(), &[]);
    assert_eq!(poster.status, 200);
    assert_eq!(poster.header("content-type"), Some("image/jpeg"));
    assert!(poster.body.starts_with(&[0xff, 0xd8, 0xff]), "not a JPEG");
    let etag = poster.header("etag").unwrap().to_string();
    let again = get(
        &app,
        v["posterUrl"].as_str().unwrap(),
        &[("If-None-Match", &etag)],
    );
    assert_eq!(again.status, 304);

    // The rendition: H.264 and AAC in MP4, index first, as long as the original.
    let r = &v["renditions"][0];
    assert_eq!(r["contentType"], "video/mp4");
    assert_eq!(
        (r["width"].as_u64(), r["height"].as_u64()),
        (Some(640), Some(360))
    );
    let whole = get(&app, r["url"].as_str().unwrap(), &[]);
    assert_eq!(whole.status, 200);
    assert_eq!(whole.body.len() as u64, r["size"].as_u64().unwrap());
    assert_eq!(sha256_hex(&whole.body), r["sha256"].as_str().unwrap());
    let part = get(&app, r["url"].as_str().unwrap(), &[("Range", "bytes=0-99")]);
    assert_eq!(part.status, 206);
    assert_eq!(part.body, whole.body[..100]);
    let file = dir.path().join("rendition.mp4");
    std::fs::write(&file, &whole.body).unwrap();
    assert_eq!(ffprobe(&file, "stream=codec_name"), "h264\naac");
    let moov = whole.body.windows(4).position(|w| w == b"moov").unwrap();
    let mdat = whole.body.windows(4).position(|w| w == b"mdat").unwrap();
    assert!(moov < mdat, "the rendition's index is not first");
    let secs: f64 = ffprobe(&file, "format=duration").parse().unwrap();
    assert!((secs - 4.0).abs() < 0.2, "rendition lasts {secs} s");

    // The original is untouched.
    let served = get(&app, v["publicUrl"].as_str().unwrap(), &[]);
    assert_eq!(served.body, original);
    assert_eq!(v["sha256"].as_str().unwrap(), sha256_hex(&original));

    // The players: the poster, and the rendition tried before the original.
    let page = app.send("GET", &format!("/v/{id}"), &[], b"").text();
    let poster_path = app.local(v["posterUrl"].as_str().unwrap());
    assert!(
        page.contains(&format!("poster=\"{}", v["posterUrl"].as_str().unwrap())),
        "{page}"
    );
    let rendition_at = page
        .find(r["url"].as_str().unwrap())
        .expect("the rendition is a source");
    let original_at = page
        .find("<source src=\"http")
        .map(|_| page.rfind(v["publicUrl"].as_str().unwrap()).unwrap());
    assert!(
        rendition_at < original_at.unwrap(),
        "the rendition is not tried first"
    );
    assert!(
        page.contains("codec-message notice\" role=\"alert\" hidden"),
        "a playable copy exists: no warning"
    );
    assert!(
        page.contains(&format!(
            "<meta property=\"og:image\" content=\"{}\">",
            v["posterUrl"].as_str().unwrap()
        )),
        "link previews show the poster"
    );
    let embed = app.send("GET", &format!("/embed/{id}"), &[], b"").text();
    assert!(
        embed.contains("<source src=") && embed.contains("poster="),
        "{embed}"
    );
    assert!(!poster_path.is_empty());

    // Deleted with the video.
    let derived = app.derived_dir(&id);
    assert_eq!(std::fs::read_dir(&derived).unwrap().count(), 2);
    assert_eq!(
        app.api("DELETE", &format!("/api/video/{id}"), None).status,
        200
    );
    // (A bucket served from folders may keep an empty one.)
    assert_eq!(files_under(&derived), Vec::<std::path::PathBuf>::new());
    assert_eq!(get(&app, v["posterUrl"].as_str().unwrap(), &[]).status, 404);
}

#[test]
fn a_light_h264_upload_gets_a_poster_only_and_a_heavy_one_a_rendition_too() {
    let app = TestApp::spawn_with(|r| {
        with_ffmpeg(r);
        r.max_stream_bitrate = Some(1_000_000);
    });
    let dir = tempfile::tempdir().unwrap();
    let light = h264(dir.path(), "light.mp4", "300k");
    let heavy = h264(dir.path(), "heavy.mp4", "3M");
    let (a, b) = (app.create_video("light.mp4"), app.create_video("heavy.mp4"));
    upload_to(&app, &a, "light.mp4", &light);
    upload_to(&app, &b, "heavy.mp4", &heavy);
    let (va, vb) = (settled(&app, &a), settled(&app, &b));
    assert!(va["media"]["bitrate"].as_u64().unwrap() < 1_000_000);
    assert_eq!(va["jobs"].as_array().unwrap().len(), 1, "{}", va["jobs"]);
    assert!(va.get("renditions").is_none());
    assert!(va["posterUrl"].is_string());
    assert!(vb["media"]["bitrate"].as_u64().unwrap() > 1_000_000);
    let r = &vb["renditions"][0];
    assert!(
        r["bitrate"].as_u64().unwrap() < 1_000_000,
        "the rendition ({}) is not under max_stream_bitrate",
        r["bitrate"]
    );
}

#[test]
fn a_rendition_interrupted_by_kill_9_is_made_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().join("data");
    std::fs::create_dir_all(&data_dir).unwrap();
    let token = flare_cli(&data_dir, &["token", "create", "--name", "t"])
        .trim()
        .to_string();
    let auth = format!("Bearer {token}");
    let on = [("FLARE_FFMPEG_PATH", "ffmpeg")];
    let mut node = Node::start(&data_dir, &on);
    let original = ffmpeg_make(
        dir.path(),
        "phone.mov",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=duration=30:size=640x360:rate=30",
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-tag:v",
            "hvc1",
            "-x265-params",
            "log-level=error",
            "-pix_fmt",
            "yuv420p",
        ],
    );
    let id = node.create_video(&auth, "phone.mov");
    let path = node.upload_path(&auth, &id, "phone.mov");
    let put = node.send(
        "PUT",
        &path,
        &[("Content-Type", "video/quicktime")],
        &original,
    );
    assert_eq!(put.status, 200, "{}", put.text());
    let rendition = |node: &Node| -> Value {
        let v = node
            .send(
                "GET",
                &format!("/api/video/{id}"),
                &[("Authorization", &auth)],
                b"",
            )
            .json()["video"]
            .clone();
        v["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["kind"] == "rendition")
            .unwrap()
            .clone()
    };
    let start = Instant::now();
    loop {
        let j = rendition(&node);
        if j["state"] == "running" && j["progress"].as_f64().unwrap() > 0.0 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{j}");
        std::thread::sleep(Duration::from_millis(50));
    }
    node.kill();
    // ffmpeg died with the server (PR_SET_PDEATHSIG): nothing still reads the video.
    std::thread::sleep(Duration::from_millis(300));
    let left = Command::new("pgrep")
        .args(["-f", &format!("objects/{id}/")])
        .output()
        .unwrap()
        .stdout;
    assert!(left.is_empty(), "ffmpeg outlived the server");
    let node = Node::start(&data_dir, &on);
    let start = Instant::now();
    loop {
        let j = rendition(&node);
        if j["state"] == "done" {
            assert_eq!(
                j["attempts"], 1,
                "the cut run is not counted as a failure: {j}"
            );
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "{j}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        node.log_text()
            .contains("queued again 1 poster or rendition job"),
        "{}",
        node.log_text()
    );
    let v = node
        .send(
            "GET",
            &format!("/api/video/{id}"),
            &[("Authorization", &auth)],
            b"",
        )
        .json()["video"]
        .clone();
    let url = v["renditions"][0]["url"].as_str().unwrap();
    let path = format!("/{}", url.splitn(4, '/').nth(3).unwrap());
    let made = node.send("GET", &path, &[], b"").body;
    let file = dir.path().join("made.mp4");
    std::fs::write(&file, made).unwrap();
    let secs: f64 = ffprobe(&file, "format=duration").parse().unwrap();
    assert!((secs - 30.0).abs() < 0.5, "the rendition lasts {secs} s");
    // Nothing of the cut run is left in tmp/.
    let tmp: Vec<_> = std::fs::read_dir(data_dir.join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with("rendition"))
        .collect();
    assert!(tmp.is_empty(), "{tmp:?}");
}

#[test]
fn a_failing_ffmpeg_is_shown_with_its_words_and_retried_later() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad-ffmpeg");
    std::fs::write(
        &bad,
        "#!/bin/sh\necho 'Unknown encoder libx264' >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&bad, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = bad.to_str().unwrap().to_string();
    let app = TestApp::spawn_with(|r| r.ffmpeg_path = Some(path));
    let original = h264(dir.path(), "a.mp4", "300k");
    let id = app.create_video("a.mp4");
    upload_to(&app, &id, "a.mp4", &original);
    let v = settled_or_retrying(&app, &id);
    let job = &v["jobs"][0];
    assert_eq!(job["kind"], "poster");
    assert_eq!(job["state"], "queued", "retried later: {job}");
    assert_eq!(job["attempts"], 1);
    assert!(
        job["error"]
            .as_str()
            .unwrap()
            .contains("Unknown encoder libx264"),
        "{job}"
    );
    assert!(v.get("posterUrl").is_none());
    // The upload itself is not affected.
    assert_eq!(v["status"], "ready");
}

/// The video once its first job has failed at least once.
fn settled_or_retrying(app: &TestApp, id: &str) -> Value {
    let start = Instant::now();
    loop {
        let v = video(app, id);
        if v["jobs"][0]["error"].is_string() {
            return v;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{}", v["jobs"]);
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_new_upload_replaces_the_posters_and_renditions_of_the_old_one() {
    let app = TestApp::spawn_with(with_ffmpeg);
    let dir = tempfile::tempdir().unwrap();
    let id = app.create_video("phone.mov");
    upload_to(&app, &id, "phone.mov", &hevc(dir.path()));
    let before = settled(&app, &id);
    assert_eq!(before["renditions"].as_array().unwrap().len(), 1);
    upload_to(&app, &id, "clip.mp4", &h264(dir.path(), "clip.mp4", "300k"));
    let after = settled(&app, &id);
    assert!(after.get("renditions").is_none(), "{after}");
    assert_ne!(after["posterUrl"], before["posterUrl"]);
    assert_eq!(
        get(&app, before["renditions"][0]["url"].as_str().unwrap(), &[]).status,
        404
    );
    let left: Vec<String> = std::fs::read_dir(app.derived_dir(&id))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left.len(), 1, "the old files are gone: {left:?}");
}

#[test]
fn without_ffmpeg_nothing_is_queued_and_a_poster_can_be_sent() {
    let app = TestApp::spawn();
    let dir = tempfile::tempdir().unwrap();
    let id = app.create_video("a.mp4");
    // Before the upload there is nothing to put a poster on.
    let early = app.send(
        "PUT",
        &format!("/api/video/{id}/poster"),
        &[("Authorization", &format!("Bearer {}", app.token))],
        &[0xff, 0xd8, 0xff, 0xe0, 1, 2, 3],
    );
    assert_eq!(early.status, 400);
    assert!(early.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("upload it before"));
    upload_to(&app, &id, "a.mp4", &h264(dir.path(), "a.mp4", "300k"));
    let v = video(&app, &id);
    assert!(
        v.get("jobs").is_none() && v.get("posterUrl").is_none(),
        "{v}"
    );

    let jpeg = ffmpeg_make(
        dir.path(),
        "p.jpg",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x180",
            "-frames:v",
            "1",
        ],
    );
    let auth = format!("Bearer {}", app.token);
    let gif = app.send(
        "PUT",
        &format!("/api/video/{id}/poster"),
        &[("Authorization", &auth)],
        b"GIF89a....",
    );
    assert_eq!(gif.status, 400);
    assert_eq!(gif.error_code(), "invalid-field");
    assert!(gif.text().contains("JPEG, PNG or WebP"), "{}", gif.text());
    let too_big = app.send(
        "PUT",
        &format!("/api/video/{id}/poster"),
        &[("Authorization", &auth)],
        &vec![0xff; 6 << 20],
    );
    assert_eq!(too_big.status, 413);
    let read_only = app
        .new_token(&[flare::domain::tokens::Scope::VideosRead], None)
        .0;
    let refused = app.send(
        "PUT",
        &format!("/api/video/{id}/poster"),
        &[("Authorization", &format!("Bearer {read_only}"))],
        &jpeg,
    );
    assert_eq!(refused.status, 403);

    let put = app.send(
        "PUT",
        &format!("/api/video/{id}/poster"),
        &[("Authorization", &auth)],
        &jpeg,
    );
    assert_eq!(put.status, 200, "{}", put.text());
    crate::openapi::check("PUT", "/api/video/{id}/poster", &put);
    let url = put.json()["video"]["posterUrl"]
        .as_str()
        .unwrap()
        .to_string();
    let served = get(&app, &url, &[]);
    assert_eq!(served.body, jpeg);
    assert_eq!(served.header("content-type"), Some("image/jpeg"));

    // A protected video's poster needs its password, like its bytes.
    let lock = app.api(
        "PATCH",
        &format!("/api/video/update/{id}"),
        Some(json!({ "password": "pw-123456" })),
    );
    assert_eq!(lock.status, 200, "{}", lock.text());
    assert_eq!(get(&app, &url, &[]).status, 401);
    app.api(
        "PATCH",
        &format!("/api/video/update/{id}"),
        Some(json!({ "password": null })),
    );

    let del = app.send(
        "DELETE",
        &format!("/api/video/{id}/poster"),
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!(del.status, 200);
    assert!(del.json()["video"].get("posterUrl").is_none());
    assert_eq!(get(&app, &url, &[]).status, 404);
    let again = app.send(
        "DELETE",
        &format!("/api/video/{id}/poster"),
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!(again.status, 404);
    assert!(again.text().contains("has no poster"));
}

#[test]
fn fsck_finds_a_missing_poster_and_a_stray_derived_file_and_repair_remakes_the_poster() {
    let app = TestApp::spawn_with(with_ffmpeg);
    let dir = tempfile::tempdir().unwrap();
    let id = app.create_video("a.mp4");
    upload_to(&app, &id, "a.mp4", &h264(dir.path(), "a.mp4", "300k"));
    let v = settled(&app, &id);
    let derived = app.derived_dir(&id);
    let poster_file = v["posterUrl"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    std::fs::remove_file(derived.join(&poster_file)).unwrap();
    std::fs::write(derived.join("stray.jpg"), b"stray").unwrap();
    // Left an hour ago (in a bucket, fsck leaves objects younger than 10 minutes alone).
    std::fs::File::options()
        .write(true)
        .open(derived.join("stray.jpg"))
        .unwrap()
        .set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(3600))
        .unwrap();

    let out = run_flare(&app.data_dir(), &["fsck", "--json", "--repair"], &[]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let kinds: Vec<&str> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"asset-missing") && kinds.contains(&"orphan-file"),
        "{report}"
    );
    assert!(!derived.join("stray.jpg").exists(), "moved to lost+found");
    // The server sees the poster queued again and makes it.
    // (A new thumbnailTime also makes the poster again, at once.)
    let patched = app.api(
        "PATCH",
        &format!("/api/video/{id}/embed-settings"),
        Some(json!({ "embedSettings": { "thumbnailTime": 1 } })),
    );
    assert_eq!(patched.status, 200, "{}", patched.text());
    let after = settled(&app, &id);
    let url = after["posterUrl"].as_str().expect("made again");
    assert_eq!(get(&app, url, &[]).status, 200);
    let out = run_flare(&app.data_dir(), &["fsck", "--json"], &[]);
    let clean: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(clean["problems"], json!([]), "{clean}");
}

fn framemd5(path: &Path) -> String {
    let out = Command::new("ffmpeg")
        .args(["-loglevel", "error", "-i"])
        .arg(path)
        .args(["-map", "0", "-c", "copy", "-f", "framemd5", "-"])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn an_index_last_mp4_gets_an_index_first_copy_with_the_same_samples_without_ffmpeg() {
    let app = TestApp::spawn_with(|r| r.faststart = Some(true));
    let dir = tempfile::tempdir().unwrap();
    // ffmpeg writes the index last unless told +faststart.
    let original = ffmpeg_make(
        dir.path(),
        "late.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=duration=3:size=320x240:rate=25",
            "-f",
            "lavfi",
            "-i",
            "sine=duration=3",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
        ],
    );
    let id = app.create_video("late.mp4");
    upload_to(&app, &id, "late.mp4", &original);
    let v = settled(&app, &id);
    assert_eq!(v["media"]["fastStart"], false);
    assert_eq!(v["jobs"][0]["kind"], "faststart", "{v}");
    assert_eq!(v["jobs"][0]["state"], "done", "{v}");
    let copy = &v["renditions"][0];
    assert_eq!(
        (copy["status"].as_str(), copy["videoCodec"].as_str()),
        (Some("ready"), Some("h264"))
    );
    let bytes = get(&app, copy["url"].as_str().unwrap(), &[]).body;
    assert_eq!(
        bytes.len(),
        original.len(),
        "the same boxes, in another order"
    );
    let moov = bytes.windows(4).position(|w| w == b"moov").unwrap();
    let mdat = bytes.windows(4).position(|w| w == b"mdat").unwrap();
    assert!(moov < mdat, "the copy's index is not first");
    let (a, b) = (dir.path().join("a.mp4"), dir.path().join("b.mp4"));
    std::fs::write(&a, &original).unwrap();
    std::fs::write(&b, &bytes).unwrap();
    assert_eq!(framemd5(&a), framemd5(&b), "the samples differ");
    // The original is served as uploaded; the players try the copy first.
    assert_eq!(
        get(&app, v["publicUrl"].as_str().unwrap(), &[]).body,
        original
    );
    let page = app.send("GET", &format!("/v/{id}"), &[], b"").text();
    assert!(
        page.find(copy["url"].as_str().unwrap()).unwrap()
            < page.rfind(v["publicUrl"].as_str().unwrap()).unwrap()
    );
    // An index-first upload gets no copy.
    let id2 = app.create_video("early.mp4");
    upload_to(
        &app,
        &id2,
        "early.mp4",
        &h264(dir.path(), "early.mp4", "300k"),
    );
    assert!(settled(&app, &id2).get("jobs").is_none());
}

#[test]
fn a_video_deleted_while_its_rendition_is_made_leaves_nothing_behind() {
    let app = TestApp::spawn_with(with_ffmpeg);
    let dir = tempfile::tempdir().unwrap();
    let long = ffmpeg_make(
        dir.path(),
        "long.mov",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=duration=40:size=1280x720:rate=30",
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-tag:v",
            "hvc1",
            "-x265-params",
            "log-level=error",
            "-pix_fmt",
            "yuv420p",
        ],
    );
    let id = app.create_video("long.mov");
    upload_to(&app, &id, "long.mov", &long);
    let start = Instant::now();
    loop {
        let v = video(&app, &id);
        let running = v["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["kind"] == "rendition")
            .unwrap();
        if running["state"] == "running" && running["progress"].as_f64().unwrap() > 0.0 {
            assert_eq!(v["renditions"][0]["status"], "processing");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{}", v["jobs"]);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        app.api("DELETE", &format!("/api/video/{id}"), None).status,
        200
    );
    // The transcode stops at its next progress report (about a second) and its output goes.
    let start = Instant::now();
    loop {
        let tmp: Vec<String> = std::fs::read_dir(app.data_dir().join("tmp"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("rendition"))
            .collect();
        let ffmpeg_left = Command::new("pgrep")
            .args(["-f", &format!("objects/{id}/")])
            .output()
            .unwrap()
            .stdout;
        if tmp.is_empty() && ffmpeg_left.is_empty() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "left behind: {tmp:?}, ffmpeg {}",
            String::from_utf8_lossy(&ffmpeg_left)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(!app.data_dir().join("objects").join(&id).exists());
}

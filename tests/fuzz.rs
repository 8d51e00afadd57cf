//! Property-based fuzzing of the parsers that face the network: the Range header, the signed
//! URL's query parser and verifier, JSON request bodies with the embed-settings merger, and the
//! request heads the sendfile path peeks at.
//!
//! `cargo fuzz` needs a nightly toolchain; CI has the stable one, so the same targets are fuzzed
//! here with a seeded generator: seeds from `tests/fuzz-corpus/`, their mutations, and random
//! bytes, for a bounded time each (FLARE_FUZZ_SECS, default 5). Each case checks properties that
//! must hold for any input, not just "no panic". The seed is printed so a failure can be replayed.

use flare::domain::embed::EmbedSettings;
use flare::domain::signing::{self, UploadGrant, VerifyError};
use flare::http::fastpath::{plain_request, HARMLESS};
use flare::http::ranges::{parse_range, RangeAnswer};
use flare::json::JsonObject;
use std::time::{Duration, Instant};

/// xorshift64*: small, seedable, good enough to drive mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const ALPHABET: &[u8] = b"bytes=-,0123456789 %&=+/\\.:;\"{}[]-_aZ\x00\xff\xc0\xae\n";

fn corpus(name: &str) -> Vec<Vec<u8>> {
    let path = format!("{}/tests/fuzz-corpus/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| l.replace("\\n", "\n").into_bytes())
        .collect()
}

/// A seed, mutated a few times, or (sometimes) fresh random bytes.
fn input(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut data = if rng.below(8) == 0 || seeds.is_empty() {
        (0..rng.below(64)).map(|_| rng.next() as u8).collect()
    } else {
        seeds[rng.below(seeds.len())].clone()
    };
    for _ in 0..rng.below(6) {
        let at = rng.below(data.len() + 1);
        match rng.below(5) {
            0 if !data.is_empty() => {
                data.remove(at.min(data.len() - 1));
            }
            1 => data.insert(at, ALPHABET[rng.below(ALPHABET.len())]),
            2 if !data.is_empty() => {
                let i = at.min(data.len() - 1);
                data[i] = rng.next() as u8;
            }
            3 => {
                let other = &seeds[rng.below(seeds.len())];
                let cut = rng.below(other.len() + 1);
                data.splice(at..at, other[..cut].iter().copied());
            }
            _ => data.insert(at, ALPHABET[rng.below(ALPHABET.len())]),
        }
    }
    data
}

/// Runs `case` on generated inputs until the time budget is spent; returns how many ran.
fn fuzz(name: &str, seeds_file: &str, mut case: impl FnMut(&[u8])) -> u64 {
    let secs: u64 = std::env::var("FLARE_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    // A new seed each run explores new inputs; FLARE_FUZZ_SEED replays a printed one.
    let seed: u64 = std::env::var("FLARE_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64 | 1)
                .unwrap_or(1)
        });
    let seeds = corpus(seeds_file);
    for s in &seeds {
        case(s);
    }
    let mut rng = Rng(seed);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut runs = seeds.len() as u64;
    while Instant::now() < deadline {
        for _ in 0..256 {
            let data = input(&mut rng, &seeds);
            case(&data);
            runs += 1;
        }
    }
    eprintln!("fuzz {name}: {runs} executions in {secs} s (seed {seed})");
    runs
}

#[test]
fn fuzz_range_header() {
    let runs = fuzz("range", "range.txt", |data| {
        let header = String::from_utf8_lossy(data);
        for size in [0u64, 1, 1000, u64::MAX] {
            match parse_range(&header, size) {
                RangeAnswer::Partial { start, end } => {
                    assert!(
                        start <= end && end < size,
                        "{header:?} on {size}: {start}-{end}"
                    );
                }
                RangeAnswer::Unsatisfiable | RangeAnswer::Full => {}
            }
        }
    });
    assert!(runs > 1000);
}

#[test]
fn fuzz_signed_url_query() {
    let key = signing::key_from_bytes(b"fuzz key");
    let grant = UploadGrant {
        video_id: "vid_1".into(),
        file_name: "demo.mp4".into(),
        expires: 2_000,
        content_type: "video/mp4".into(),
        limit: 1000,
        exact: false,
        upload_id: "up_1".into(),
        token_id: "tok_1".into(),
        resumable_until: None,
    };
    let genuine = grant.sign(&key);
    let genuine_query = genuine.split_once('?').unwrap().1.to_string();
    let mut seeds_extra = vec![genuine_query.clone().into_bytes()];
    seeds_extra.extend(corpus("query.txt"));
    let verify_put = |pairs: &[(String, String)]| {
        signing::verify(
            std::slice::from_ref(&key),
            "PUT",
            "vid_1",
            "demo.mp4",
            pairs,
            1_000,
        )
    };
    let runs = fuzz("signed-url", "query.txt", |data| {
        let query = String::from_utf8_lossy(data);
        let Ok(pairs) = signing::parse_query(&query) else {
            return;
        };
        match verify_put(&pairs) {
            // Only a query that decodes to exactly the signed parameters may pass.
            Ok(g) => {
                assert_eq!(g, grant, "{query:?} verified as something else");
                let mut got = pairs.clone();
                let mut want = signing::parse_query(&genuine_query).unwrap();
                got.sort();
                want.sort();
                assert_eq!(
                    got, want,
                    "{query:?} verified but differs from the signed query"
                );
            }
            Err(VerifyError::Mismatch(_)) | Err(VerifyError::Expired) => {}
            // Only a resumable URL has a window, and none verifies under "PUT".
            Err(VerifyError::SessionExpired) => panic!("{query:?} verified as a resumable URL"),
        }
    });
    // The genuine URL, mutated: the same property.
    let mut rng = Rng(7);
    for _ in 0..20_000 {
        let data = input(&mut rng, &seeds_extra);
        if let Ok(pairs) = signing::parse_query(&String::from_utf8_lossy(&data)) {
            if let Ok(g) = verify_put(&pairs) {
                assert_eq!(g, grant);
            }
        }
    }
    assert!(runs > 1000);
}

#[test]
fn fuzz_json_bodies() {
    let runs = fuzz("json", "json.txt", |data| {
        let Ok(obj) = JsonObject::parse(data) else {
            return;
        };
        // Field readers refuse with invalid-field or answer; they never panic.
        for field in [
            "videoId",
            "fileName",
            "s3Key",
            "title",
            "size",
            "expiresIn",
            "width",
            "embedSettings",
        ] {
            let _ = obj.string(field);
            let _ = obj.opt_u64_in(field, 1, u64::MAX);
            let _ = obj.opt_non_negative(field);
        }
        if let Some(serde_json::Value::Object(patch)) = obj.0.get("embedSettings") {
            if let Ok(merged) = EmbedSettings::default().merge(patch) {
                // Whatever was accepted is within the documented ranges.
                assert!(merged.embed_border_radius <= 24);
                assert!(merged.thumbnail_time >= 0.0 && merged.thumbnail_time.is_finite());
                assert!(["flare", "minimal", "custom"].contains(&merged.player_theme.as_str()));
                assert!(merged.accent_color.len() == 7 && merged.accent_color.starts_with('#'));
            }
        }
    });
    assert!(runs > 1000);
}

#[test]
fn fuzz_media_request_heads() {
    // What the sendfile path may take: the listed headers, and the others spelled out here.
    let allowed = |name: &str| {
        let name = name.to_ascii_lowercase();
        name.starts_with("sec-fetch-")
            || name.starts_with("sec-ch-")
            || ["range", "connection"].contains(&name.as_str())
            || HARMLESS.contains(&name.as_str())
    };
    let runs = fuzz("media-head", "media-head.txt", |data| {
        let Some(req) = plain_request(data) else {
            return;
        };
        assert!(req.head_len <= data.len());
        let head = String::from_utf8_lossy(&data[..req.head_len]);
        assert!(
            head.ends_with("\n\n") || head.ends_with("\n\r\n"),
            "{head:?}"
        );
        // Empty lines before a request line are skipped, as RFC 9112 §2.2 allows (and actix).
        let mut lines = head.trim_start_matches(['\r', '\n']).lines();
        let first = lines.next().unwrap();
        assert!(
            first.starts_with("GET /media/") || first.starts_with("HEAD /media/"),
            "{head:?}"
        );
        assert!(first.ends_with(" HTTP/1.1"), "{first:?}");
        assert!(req.path.starts_with("/media/") && !req.path.contains(['%', '?']));
        assert_eq!(
            req.path,
            format!("/media/{}/composite/{}", req.video_id, req.file_name)
        );
        assert!(flare::domain::names::check_path_name("videoId", req.video_id).is_ok());
        assert!(flare::domain::names::check_path_name("fileName", req.file_name).is_ok());
        for line in lines.filter(|l| !l.trim().is_empty()) {
            let name = line.split(':').next().unwrap();
            assert!(allowed(name), "{name:?} let through in {head:?}");
        }
        if let Some(range) = req.range {
            assert!(
                range.bytes().all(|b| (0x20..0x7f).contains(&b)),
                "{range:?}"
            );
        }
    });
    assert!(runs > 1000);
}

#[test]
fn fuzz_media_probe() {
    // Seeds: an MP4 made by ffmpeg (fast start and not), a MOV, a WebM and an MKV; then flipped bytes, cut
    // files, and box sizes set to extremes. The probe must answer every one, quickly, with sane
    // values, and never read past the file.
    let dir = tempfile::tempdir().unwrap();
    let mut seeds = Vec::new();
    for (name, extra) in [
        ("a.mp4", "+faststart"),
        ("b.mp4", "+empty_moov"),
        ("c.mov", "+faststart"),
    ] {
        let out = dir.path().join(name);
        let ok = std::process::Command::new("ffmpeg")
            .args([
                "-y",
                "-loglevel",
                "error",
                "-f",
                "lavfi",
                "-i",
                "testsrc=duration=1:size=64x48:rate=5",
            ])
            .args([
                "-f",
                "lavfi",
                "-i",
                "sine=duration=1",
                "-c:v",
                "libx264",
                "-c:a",
                "aac",
            ])
            .args(["-movflags", extra])
            .arg(&out)
            .status()
            .expect("ffmpeg is needed (.ci/run installs it)");
        assert!(ok.success());
        seeds.push((std::fs::read(out).unwrap(), ["mp4", "mov", "m4v"]));
    }
    // WebM (VP9, Opus) and MKV (H.264, AAC), for the Matroska reader.
    for (name, codecs) in [
        ("d.webm", ["libvpx-vp9", "libopus"]),
        ("e.mkv", ["libx264", "aac"]),
    ] {
        let out = dir.path().join(name);
        let ok = std::process::Command::new("ffmpeg")
            .args(["-y", "-loglevel", "error", "-f", "lavfi"])
            .args(["-i", "testsrc=duration=1:size=64x48:rate=5", "-f", "lavfi"])
            .args([
                "-i",
                "sine=duration=1",
                "-c:v",
                codecs[0],
                "-c:a",
                codecs[1],
            ])
            .arg(&out)
            .status()
            .expect("ffmpeg is needed (.ci/run installs it)");
        assert!(ok.success());
        seeds.push((std::fs::read(out).unwrap(), ["webm", "mkv", "webm"]));
    }
    let secs: u64 = std::env::var("FLARE_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    // Said first: a probe that never returns leaves no other word of which input it was.
    eprintln!("fuzz probe: seed {seed}");
    let mut rng = Rng(seed);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut runs = 0u64;
    while Instant::now() < deadline {
        let (seed_bytes, exts) = &seeds[rng.below(seeds.len())];
        let mut data = seed_bytes.clone();
        match rng.below(4) {
            0 => {
                for _ in 0..1 + rng.below(16) {
                    let i = rng.below(data.len());
                    data[i] = rng.next() as u8;
                }
            }
            1 => data.truncate(rng.below(data.len())),
            2 => {
                // A box size field: 0, 1 (64-bit follows), tiny, or huge.
                let i = rng.below(data.len().saturating_sub(4));
                let v: u32 = [0, 1, 7, 8, u32::MAX, rng.next() as u32][rng.below(6)];
                data[i..i + 4].copy_from_slice(&v.to_be_bytes());
            }
            _ => data = (0..rng.below(4096)).map(|_| rng.next() as u8).collect(),
        }
        let ext = exts[rng.below(3)];
        let started = Instant::now();
        let size = data.len() as u64;
        let info = flare::domain::probe::probe(&mut std::io::Cursor::new(&data), size, ext);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "probe took {:?} (seed {seed})",
            started.elapsed()
        );
        assert!(matches!(
            info.container.as_str(),
            "mp4" | "mov" | "webm" | "matroska"
        ));
        if let Some(d) = info.duration {
            assert!(d.is_finite() && d >= 0.0, "duration {d} (seed {seed})");
        }
        if let Some(f) = info.frame_rate {
            assert!(f.is_finite() && f >= 0.0, "frame rate {f} (seed {seed})");
        }
        runs += 1;
    }
    eprintln!("fuzz probe: {runs} executions in {secs} s (seed {seed})");
    assert!(runs > 100);
}

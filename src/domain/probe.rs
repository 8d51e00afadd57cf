//! What an uploaded object is: container, duration, size in pixels, frame rate, codecs, bitrate,
//! and for MP4/MOV whether its index (`moov`) comes before the data. Run on the staged file
//! before publication, so the record that makes a video `ready` carries it.
//!
//! MP4, M4V and MOV are read with Mozilla's `mp4parse` (Firefox's parser), fed only the `ftyp`
//! and `moov` boxes: the top-level boxes are walked by their headers (seeking over `mdat`), so
//! a 20 GB file costs a few reads, not a pass. A file a parser cannot read is still stored and
//! served; what could not be learnt is left out (`null`), and `playable` stays unknown.
//! WebM and MKV are read with the `matroska-demuxer` crate, from their headers too. OGV is named
//! by its container only.

use std::io::{self, Read, Seek, SeekFrom};

/// The probe's answer, as the API's `media` object shows it.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaInfo {
    /// `mp4`, `mov`, `webm`, `matroska`, `ogg`.
    pub container: String,
    /// Seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Frames per second, to two decimals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frame_rate: Option<f64>,
    /// `h264`, `hevc`, `av1`, `vp9`, `vp8`, `mpeg4`, `h263`, `prores`, or the sample entry's
    /// four-character code when flare does not know it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub video_codec: Option<String>,
    /// `aac`, `mp3`, `opus`, `flac`, `alac`, `pcm`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audio_codec: Option<String>,
    /// Bits per second over the whole file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bitrate: Option<u64>,
    /// MP4/MOV: the index comes before the data, so playback can start before the whole file
    /// arrives.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fast_start: Option<bool>,
    /// Whether common browsers (Chromium, Firefox, Safari) play the original.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub playable: Option<bool>,
}

/// The largest `moov` read into memory (a two-hour film's index is a few MB).
const MAX_MOOV: u64 = 64 << 20;

/// Reads and seeks one probe may make: a real file's headers take a few thousand (a long
/// film's cues included); a file that sends a parser round in circles meets the end of it.
const MAX_OPS: u64 = 2_000_000;

/// A reader that fails once it has been asked `MAX_OPS` times.
struct Budget<'a, R> {
    inner: &'a mut R,
    ops_left: u64,
}

impl<R> Budget<'_, R> {
    fn spend(&mut self) -> io::Result<()> {
        match self.ops_left.checked_sub(1) {
            Some(left) => {
                self.ops_left = left;
                Ok(())
            }
            None => Err(io::Error::other(
                "the probe gave up: the file's headers go round in circles",
            )),
        }
    }
}

impl<R: Read> Read for Budget<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.spend()?;
        self.inner.read(buf)
    }
}

impl<R: Seek> Seek for Budget<'_, R> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.spend()?;
        self.inner.seek(to)
    }
}

/// Probes an object of `size` bytes whose name ends in `extension`. Never fails: what cannot be
/// read is left unknown. Blocking.
pub fn probe<R: Read + Seek>(file: &mut R, size: u64, extension: &str) -> MediaInfo {
    let ext = extension.to_ascii_lowercase();
    let container = match ext.as_str() {
        "mp4" | "m4v" => "mp4",
        "mov" => "mov",
        "webm" => "webm",
        "mkv" => "matroska",
        "ogv" => "ogg",
        _ => "unknown",
    };
    let mut info = MediaInfo {
        container: container.into(),
        ..MediaInfo::default()
    };
    // However the file is made, the parsers get a bounded number of reads: a crafted file
    // once sent matroska-demuxer round one spot forever, holding a thread at full speed.
    let mut file = Budget {
        inner: file,
        ops_left: MAX_OPS,
    };
    if matches!(container, "mp4" | "mov") {
        // A parse error leaves the fields unknown; the object is stored all the same.
        let _ = probe_mp4(&mut file, size, &mut info);
    }
    if matches!(container, "webm" | "matroska") {
        probe_matroska(&mut file, &mut info);
    }
    if let Some(d) = info.duration.filter(|d| *d > 0.0) {
        info.bitrate = Some((size as f64 * 8.0 / d).round() as u64);
    }
    info
}

fn probe_mp4<R: Read + Seek>(file: &mut R, size: u64, info: &mut MediaInfo) -> io::Result<()> {
    // The top-level boxes, by their headers only.
    let (mut ftyp, mut moov, mut mdat_at) = (None, None, None);
    let mut pos = 0u64;
    while pos + 8 <= size {
        file.seek(SeekFrom::Start(pos))?;
        let mut head = [0u8; 16];
        file.read_exact(&mut head[..8])?;
        let mut len = u32::from_be_bytes(head[..4].try_into().expect("4 bytes")) as u64;
        let kind: [u8; 4] = head[4..8].try_into().expect("4 bytes");
        let mut header = 8;
        if len == 1 {
            file.read_exact(&mut head[8..16])?;
            len = u64::from_be_bytes(head[8..16].try_into().expect("8 bytes"));
            header = 16;
        } else if len == 0 {
            len = size - pos;
        }
        if len < header || pos + len > size {
            break; // truncated or not a box: stop where the structure ends
        }
        match &kind {
            b"ftyp" if len <= 4096 => ftyp = Some((pos, len)),
            b"moov" if len <= MAX_MOOV => {
                moov = Some((pos, len));
                info.fast_start = Some(mdat_at.is_none());
            }
            b"mdat" if mdat_at.is_none() => mdat_at = Some(pos),
            _ => {}
        }
        pos += len;
    }
    let Some((moov_at, moov_len)) = moov else {
        return Ok(());
    };
    let mut boxes = Vec::with_capacity(moov_len as usize + 64);
    for (at, len) in ftyp.into_iter().chain([(moov_at, moov_len)]) {
        file.seek(SeekFrom::Start(at))?;
        file.by_ref().take(len).read_to_end(&mut boxes)?;
    }
    let moov_bytes = &boxes[boxes.len() - moov_len as usize..];
    let fourccs = sample_entry_codes(moov_bytes);
    let context = mp4parse::read_mp4(&mut io::Cursor::new(&boxes[..]))
        .map_err(|e| io::Error::other(format!("{e:?}")))?;
    let mut audio_ok = true;
    let mut video_ok = true;
    for (i, track) in context.tracks.iter().enumerate() {
        let scale = track.timescale.map(|t| t.0).filter(|t| *t > 0);
        let seconds = match (track.duration, scale) {
            (Some(d), Some(s)) => Some(d.0 as f64 / s as f64),
            _ => None,
        };
        let entry = track.stsd.as_ref().and_then(|s| s.descriptions.first());
        match (&track.track_type, entry) {
            // A codec mp4parse does not know (HEVC, ProRes…) comes as an unknown entry: its
            // code names it, and the track header still gives its size.
            (mp4parse::TrackType::Video | mp4parse::TrackType::Picture, entry)
                if info.video_codec.is_none() =>
            {
                let code = fourccs.get(i).copied().unwrap_or(*b"????");
                let (kind, coded) = match entry {
                    Some(mp4parse::SampleEntry::Video(v)) => {
                        (v.codec_type, Some((v.width as u32, v.height as u32)))
                    }
                    _ => (mp4parse::CodecType::Unknown, None),
                };
                let (name, plays) = video_codec(kind, &code);
                video_ok = plays;
                info.video_codec = Some(name);
                // The track header's size is the display size (after the pixel aspect ratio).
                let size = track
                    .tkhd
                    .as_ref()
                    .map(|t| (t.width >> 16, t.height >> 16))
                    .filter(|(w, h)| *w > 0 && *h > 0)
                    .or(coded);
                if let Some((w, h)) = size {
                    info.width = Some(w);
                    info.height = Some(h);
                }
                if let (Some(stts), Some(s)) = (&track.stts, scale) {
                    let (count, ticks) = stts.samples.iter().fold((0u64, 0u64), |(c, t), e| {
                        (
                            c + e.sample_count as u64,
                            t + e.sample_count as u64 * e.sample_delta as u64,
                        )
                    });
                    if ticks > 0 {
                        info.frame_rate =
                            Some((count as f64 * s as f64 / ticks as f64 * 100.0).round() / 100.0);
                    }
                }
                info.duration = longest(info.duration, seconds);
            }
            (mp4parse::TrackType::Audio, Some(mp4parse::SampleEntry::Audio(a)))
                if info.audio_codec.is_none() =>
            {
                let (name, plays) = audio_codec(a.codec_type);
                audio_ok = plays;
                info.audio_codec = Some(name.into());
                info.duration = longest(info.duration, seconds);
            }
            _ => {}
        }
    }
    info.duration = info.duration.map(|d| (d * 1000.0).round() / 1000.0);
    if info.video_codec.is_some() || info.audio_codec.is_some() {
        info.playable = Some(video_ok && audio_ok);
    }
    Ok(())
}

/// WebM and MKV, with the `matroska-demuxer` crate: it reads the EBML header, the segment's
/// seek head, info, tracks and cues, seeking over the clusters (the media), so a large file
/// costs a few reads. An unreadable file leaves the fields unknown.
fn probe_matroska<R: Read + Seek>(file: &mut R, info: &mut MediaInfo) {
    use matroska_demuxer::{MatroskaFile, TrackType};
    let _ = file.seek(SeekFrom::Start(0));
    let Ok(mkv) = MatroskaFile::open(&mut *file) else {
        return;
    };
    let scale = mkv.info().timestamp_scale().get() as f64;
    info.duration = mkv
        .info()
        .duration()
        .map(|d| (d * scale / 1e9 * 1000.0).round() / 1000.0)
        .filter(|d| *d > 0.0);
    let (mut video_ok, mut audio_ok) = (true, true);
    for track in mkv.tracks() {
        match track.track_type() {
            TrackType::Video if info.video_codec.is_none() => {
                let (name, plays) = matroska_codec(track.codec_id());
                video_ok = plays;
                info.video_codec = Some(name);
                if let Some(v) = track.video() {
                    info.width = u32::try_from(v.pixel_width().get()).ok();
                    info.height = u32::try_from(v.pixel_height().get()).ok();
                }
                info.frame_rate = track
                    .default_duration()
                    .map(|ns| (1e9 / ns.get() as f64 * 100.0).round() / 100.0);
            }
            TrackType::Audio if info.audio_codec.is_none() => {
                let (name, plays) = matroska_codec(track.codec_id());
                audio_ok = plays;
                info.audio_codec = Some(name);
            }
            _ => {}
        }
    }
    // Common browsers play WebM with VP8, VP9 or AV1 and Opus or Vorbis; not all play MKV.
    if info.video_codec.is_some() || info.audio_codec.is_some() {
        info.playable = Some(info.container == "webm" && video_ok && audio_ok);
    }
}

/// A Matroska codec id as the API names it, and whether common browsers play it in WebM.
fn matroska_codec(id: &str) -> (String, bool) {
    let (name, plays) = match id {
        "V_VP8" => ("vp8", true),
        "V_VP9" => ("vp9", true),
        "V_AV1" => ("av1", true),
        "V_MPEG4/ISO/AVC" => ("h264", false),
        "V_MPEGH/ISO/HEVC" => ("hevc", false),
        "V_MPEG2" | "V_MPEG1" => ("mpeg2", false),
        "V_THEORA" => ("theora", false),
        "V_PRORES" => ("prores", false),
        "A_OPUS" => ("opus", true),
        "A_VORBIS" => ("vorbis", true),
        "A_FLAC" => ("flac", false),
        "A_MPEG/L3" => ("mp3", false),
        "A_AC3" | "A_EAC3" => ("ac3", false),
        id if id.starts_with("A_AAC") => ("aac", false),
        id if id.starts_with("A_PCM") => ("pcm", false),
        other => {
            return (
                other
                    .trim_start_matches(['V', 'A', '_'])
                    .to_ascii_lowercase(),
                false,
            )
        }
    };
    (name.into(), plays)
}

/// Each track's first sample entry code (`avc1`, `hvc1`, `apcn`…), in track order: mp4parse
/// names only the codecs Firefox plays, and a person wants to know what the others are.
fn sample_entry_codes(moov: &[u8]) -> Vec<[u8; 4]> {
    // stsd: version and flags (4), entry count (4), then the first entry: size (4), code (4).
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = moov[from..].windows(4).position(|w| w == b"stsd") {
        let at = from + i + 4 + 12;
        if let Some(code) = moov.get(at..at + 4) {
            out.push(code.try_into().expect("4 bytes"));
        }
        from += i + 4;
    }
    out
}

fn video_codec(kind: mp4parse::CodecType, code: &[u8; 4]) -> (String, bool) {
    use mp4parse::CodecType as C;
    let known = match kind {
        C::H264 => Some(("h264", true)),
        C::AV1 => Some(("av1", true)),
        C::VP9 => Some(("vp9", true)),
        C::VP8 => Some(("vp8", true)),
        C::MP4V => Some(("mpeg4", false)),
        C::H263 => Some(("h263", false)),
        _ => None,
    };
    if let Some((name, plays)) = known {
        return (name.into(), plays);
    }
    match code {
        // HEVC plays in Safari and in some Chromium builds with hardware support, not commonly.
        b"hvc1" | b"hev1" => ("hevc".into(), false),
        b"apch" | b"apcn" | b"apcs" | b"apco" | b"ap4h" | b"ap4x" => ("prores".into(), false),
        b"mp2v" | b"xd5c" | b"xdvc" => ("mpeg2".into(), false),
        other => (
            String::from_utf8_lossy(other)
                .trim_matches(|c: char| !c.is_ascii_alphanumeric())
                .to_string(),
            false,
        ),
    }
}

fn audio_codec(kind: mp4parse::CodecType) -> (&'static str, bool) {
    use mp4parse::CodecType as C;
    match kind {
        C::AAC => ("aac", true),
        C::MP3 => ("mp3", true),
        C::Opus => ("opus", true),
        C::FLAC => ("flac", true),
        C::ALAC => ("alac", false),
        C::LPCM => ("pcm", false),
        _ => ("unknown", false),
    }
}

fn longest(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A WebM the fuzzer (tests/fuzz.rs) made by changing bytes of an ffmpeg file: its seek
    /// head sent matroska-demuxer 0.8.1 round one element forever.
    #[test]
    fn a_file_that_sends_the_parser_in_circles_is_given_up_on() {
        let data = include_bytes!("../../tests/data/seek-head-loop.webm").to_vec();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let size = data.len() as u64;
            let _ = tx.send(probe(&mut io::Cursor::new(data), size, "webm"));
        });
        let info = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("the probe of a looping file never returned");
        assert_eq!(info.container, "webm");
        assert_eq!(info.duration, None);
    }
}

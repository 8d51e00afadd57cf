//! Fast start: a copy of an MP4/MOV whose index (`moov`) comes after its data, with the index
//! moved first, so a player can start before the file has arrived. What `qt-faststart` does,
//! in Rust and without ffmpeg.
//!
//! The copy is the original's bytes in another order: `ftyp`, then `moov`, then every other
//! top-level box as it was. Inside `moov`, only the chunk-offset tables (`stco`, `co64`) change,
//! each entry by the size of `moov` (the data moved that far); every other byte of the index, and
//! every sample, is copied unchanged. The index is patched in place rather than decoded and
//! written again by a box library, so that no box such a library does not know (edit lists,
//! vendor metadata) can be dropped or rewritten. The box headers walked here are the same
//! size-and-type headers the probe walks; `mp4parse` has already read the index at publication.
//!
//! Left alone (no copy): files already index-first, fragmented files (`moof`), a compressed
//! index (`cmov`), data after the index, and a 32-bit offset table that would overflow.

use std::io::{self, Read, Seek, SeekFrom, Write};

/// The largest index moved (a two-hour film's is a few MB).
const MAX_MOOV: u64 = 64 << 20;

/// Where the boxes that move are, when the file wants a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// End of `ftyp`: the index goes here.
    pub insert_at: u64,
    pub moov_at: u64,
    pub moov_len: u64,
}

/// One top-level box: type, start, length.
fn top_level<R: Read + Seek>(file: &mut R, size: u64) -> io::Result<Vec<([u8; 4], u64, u64)>> {
    let mut boxes = Vec::new();
    let mut pos = 0u64;
    while pos + 8 <= size {
        file.seek(SeekFrom::Start(pos))?;
        let mut head = [0u8; 16];
        file.read_exact(&mut head[..8])?;
        let kind: [u8; 4] = head[4..8].try_into().expect("4 bytes");
        let len = match u32::from_be_bytes(head[..4].try_into().expect("4 bytes")) {
            0 => size - pos,
            1 => {
                file.read_exact(&mut head[8..16])?;
                u64::from_be_bytes(head[8..16].try_into().expect("8 bytes"))
            }
            n => u64::from(n),
        };
        if len < 8 || pos + len > size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a box runs past the end",
            ));
        }
        boxes.push((kind, pos, len));
        pos += len;
    }
    Ok(boxes)
}

/// Whether the file wants a copy, and where its boxes are. `None`: leave it as it is.
pub fn plan<R: Read + Seek>(file: &mut R, size: u64) -> io::Result<Option<Plan>> {
    let boxes = top_level(file, size)?;
    let Some(&(_, ftyp_at, ftyp_len)) = boxes.iter().find(|b| &b.0 == b"ftyp") else {
        return Ok(None);
    };
    let Some(&(_, moov_at, moov_len)) = boxes.iter().find(|b| &b.0 == b"moov") else {
        return Ok(None);
    };
    let first_mdat = boxes.iter().find(|b| &b.0 == b"mdat").map(|b| b.1);
    let fragmented = boxes.iter().any(|b| &b.0 == b"moof");
    let data_after_index = boxes.iter().any(|b| &b.0 == b"mdat" && b.1 > moov_at);
    if first_mdat.is_none_or(|m| moov_at < m)
        || fragmented
        || data_after_index
        || ftyp_at > moov_at
        || moov_len > MAX_MOOV
    {
        return Ok(None);
    }
    Ok(Some(Plan {
        insert_at: ftyp_at + ftyp_len,
        moov_at,
        moov_len,
    }))
}

/// Adds `delta` to every chunk offset in the `moov` box `moov` (header included); false when
/// the index cannot be moved (compressed, or a 32-bit offset would overflow).
fn shift_offsets(moov: &mut [u8], delta: u64) -> io::Result<bool> {
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "a box inside moov runs past its parent",
        )
    };
    // Boxes whose children hold the tables: moov > trak > mdia > minf > stbl.
    fn walk(buf: &mut [u8], delta: u64, bad: &dyn Fn() -> io::Error) -> io::Result<bool> {
        let mut pos = 0usize;
        while pos + 8 <= buf.len() {
            let len32 = u32::from_be_bytes(buf[pos..pos + 4].try_into().expect("4"));
            let kind: [u8; 4] = buf[pos + 4..pos + 8].try_into().expect("4");
            let (head, len) = match len32 {
                0 => (8, buf.len() - pos),
                1 => {
                    let l = buf.get(pos + 8..pos + 16).ok_or_else(bad)?;
                    (16, u64::from_be_bytes(l.try_into().expect("8")) as usize)
                }
                n => (8, n as usize),
            };
            if len < head || pos + len > buf.len() {
                return Err(bad());
            }
            let body = &mut buf[pos + head..pos + len];
            match &kind {
                b"cmov" => return Ok(false),
                b"trak" | b"mdia" | b"minf" | b"stbl" if !walk(body, delta, bad)? => {
                    return Ok(false)
                }
                b"stco" | b"co64" => {
                    let wide = &kind == b"co64";
                    let count =
                        u32::from_be_bytes(body.get(4..8).ok_or_else(bad)?.try_into().expect("4"))
                            as usize;
                    let width = if wide { 8 } else { 4 };
                    let table = body.get_mut(8..8 + count * width).ok_or_else(bad)?;
                    for entry in table.chunks_exact_mut(width) {
                        if wide {
                            let v = u64::from_be_bytes(entry.try_into().expect("8"));
                            let Some(moved) = v.checked_add(delta) else {
                                return Ok(false);
                            };
                            entry.copy_from_slice(&moved.to_be_bytes());
                        } else {
                            let v = u64::from(u32::from_be_bytes(entry.try_into().expect("4")));
                            let Ok(moved) = u32::try_from(v + delta) else {
                                return Ok(false);
                            };
                            entry.copy_from_slice(&moved.to_be_bytes());
                        }
                    }
                }
                _ => {}
            }
            pos += len;
        }
        Ok(true)
    }
    let head = if u32::from_be_bytes(moov[..4].try_into().expect("4")) == 1 {
        16
    } else {
        8
    };
    walk(&mut moov[head..], delta, &bad)
}

/// Writes the index-first copy of `file` to `out`; false (and nothing useful written) when the
/// index cannot be moved. Memory: the index, and a copy buffer. Blocking.
pub fn write<R: Read + Seek, W: Write>(
    file: &mut R,
    size: u64,
    plan: &Plan,
    out: &mut W,
) -> io::Result<bool> {
    let mut moov = vec![0u8; plan.moov_len as usize];
    file.seek(SeekFrom::Start(plan.moov_at))?;
    file.read_exact(&mut moov)?;
    if !shift_offsets(&mut moov, plan.moov_len)? {
        return Ok(false);
    }
    let mut copy = |from: u64, to: u64, out: &mut W| -> io::Result<()> {
        file.seek(SeekFrom::Start(from))?;
        let n = io::copy(&mut (&mut *file).take(to - from), out)?;
        if n != to - from {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file is shorter than it was",
            ));
        }
        Ok(())
    };
    copy(0, plan.insert_at, out)?;
    out.write_all(&moov)?;
    copy(plan.insert_at, plan.moov_at, out)?;
    copy(plan.moov_at + plan.moov_len, size, out)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut b = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.extend_from_slice(body);
        b
    }

    /// ftyp, mdat holding `payload`, then a moov whose one chunk offset points at it.
    fn index_last(payload: &[u8], offset_bias: u32) -> (Vec<u8>, u32) {
        let ftyp = boxed(b"ftyp", b"isom\0\0\0\0isom");
        let at = (ftyp.len() + 8) as u32 + offset_bias;
        let mut stco = vec![0, 0, 0, 0, 0, 0, 0, 1];
        stco.extend_from_slice(&at.to_be_bytes());
        let moov = boxed(
            b"moov",
            &boxed(
                b"trak",
                &boxed(
                    b"mdia",
                    &boxed(b"minf", &boxed(b"stbl", &boxed(b"stco", &stco))),
                ),
            ),
        );
        let mut file = ftyp;
        file.extend(boxed(b"mdat", payload));
        file.extend(moov);
        (file, at)
    }

    #[test]
    fn the_index_moves_first_and_its_offsets_follow_the_data() {
        let (file, _) = index_last(b"SAMPLES!", 0);
        let size = file.len() as u64;
        let plan = plan(&mut Cursor::new(&file), size)
            .unwrap()
            .expect("index last");
        let mut out = Vec::new();
        assert!(write(&mut Cursor::new(&file), size, &plan, &mut out).unwrap());
        assert_eq!(out.len(), file.len());
        assert_eq!(
            &out[plan.insert_at as usize + 4..plan.insert_at as usize + 8],
            b"moov"
        );
        // The one offset now points at the same bytes in the copy.
        let stco = out.windows(4).position(|w| w == b"stco").unwrap();
        let offset = u32::from_be_bytes(out[stco + 12..stco + 16].try_into().unwrap()) as usize;
        assert_eq!(&out[offset..offset + 8], b"SAMPLES!");
        // The copy is index-first: nothing more to do.
        assert_eq!(plan_of(&out), None);
    }

    fn plan_of(file: &[u8]) -> Option<Plan> {
        plan(&mut Cursor::new(file), file.len() as u64).unwrap()
    }

    #[test]
    fn a_32_bit_offset_that_would_overflow_leaves_the_file_alone() {
        let (file, _) = index_last(b"x", u32::MAX - 40);
        let plan = plan_of(&file).unwrap();
        let mut out = Vec::new();
        assert!(!write(&mut Cursor::new(&file), file.len() as u64, &plan, &mut out).unwrap());
    }

    #[test]
    fn files_without_an_index_at_the_end_are_left_alone() {
        assert_eq!(plan_of(&boxed(b"ftyp", b"isom")), None);
        let garbage = b"not an mp4 at all";
        assert!(!matches!(
            plan(&mut Cursor::new(garbage), garbage.len() as u64),
            Ok(Some(_))
        ));
    }
}

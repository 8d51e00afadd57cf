//! Chunked reads for actix's serving path, and whether pages are in the page cache.

use bytes::Bytes;
use futures_util::Stream;
use std::fs::File;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::task::JoinHandle;

use crate::sys;

/// Smallest and largest read when serving. A response of at most `MAX_READ` (a player's seek)
/// is read at once. A longer one starts small and reads large only once the client has shown
/// it keeps up (and drops back when it stalls), because the HTTP layer copies each chunk into the connection's write buffer and
/// a slow viewer would pin that copy for seconds.
const FIRST_READ: usize = 64 << 10;
pub(super) const MAX_READ: usize = 1 << 20;
/// Delivered before reads may grow: about what a loopback socket buffer swallows at once, so a
/// slow client cannot pass for a fast one before it has had to keep up.
const PROVEN_BYTES: u64 = 4 << 20;
/// Streams `len` bytes of `file` from `offset`. What the page cache holds is read on the
/// calling thread (`read_cached`), as nginx does; a read that needs the disk goes to a blocking
/// thread.
///
/// The read size adapts to the reader: a client that takes each chunk at once gets larger reads
/// (up to `MAX_READ`, for disk and wire speed), one that drains slowly gets smaller ones (down to
/// `FIRST_READ`), so a crowd of slow viewers does not hold a megabyte each.
pub(crate) struct FileChunks {
    file: Arc<File>,
    /// What is left of the last read, handed out `slice` bytes at a time.
    pending: Bytes,
    slice: usize,
    reading: Option<JoinHandle<io::Result<Bytes>>>,
    /// Where the next read starts.
    offset: u64,
    remaining: u64,
    next_read: usize,
    delivered: Option<std::time::Instant>,
    sent: u64,
    /// Holds one of the `MAX_BIG_STREAMS` places for large reads.
    big: bool,
}

/// Streams reading large chunks at once, across the process: slow clients fool any
/// per-stream measure for a while (the kernel's socket buffer swallows megabytes), so the
/// number of streams that may hold a megabyte each is bounded outright.
const MAX_BIG_STREAMS: usize = 16;
static BIG_STREAMS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl FileChunks {
    fn claim_big(&mut self) -> bool {
        use std::sync::atomic::Ordering;
        self.big = BIG_STREAMS
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_BIG_STREAMS).then_some(n + 1)
            })
            .is_ok();
        self.big
    }

    fn release_big(&mut self) {
        if std::mem::take(&mut self.big) {
            BIG_STREAMS.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
        }
    }
}

impl Drop for FileChunks {
    fn drop(&mut self) {
        self.release_big();
    }
}

/// Largest piece handed to the HTTP layer at once. actix-web copies each piece into the
/// connection's write buffer, and reallocates that buffer once it has grown past 128 KiB: a
/// megabyte handed over whole cost a fresh, zeroed, page-faulted allocation on every response
/// (`bench/profile.sh range`). Pieces are slices of one read, so no byte is copied to make them.
pub(super) const SLICE: usize = 64 << 10;

/// A reader that takes longer than this to come back for more is slow: back to small reads.
const SLOW_READER: std::time::Duration = std::time::Duration::from_millis(50);

impl FileChunks {
    pub fn new(file: File, offset: u64, len: u64) -> FileChunks {
        FileChunks {
            file: Arc::new(file),
            pending: Bytes::new(),
            slice: if len <= MAX_READ as u64 {
                SLICE
            } else {
                usize::MAX
            },
            reading: None,
            offset,
            remaining: len,
            next_read: if len <= MAX_READ as u64 {
                MAX_READ
            } else {
                FIRST_READ
            },
            delivered: None,
            sent: 0,
            big: false,
        }
    }
}

impl Stream for FileChunks {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if !this.pending.is_empty() {
            let n = this.pending.len().min(this.slice);
            return Poll::Ready(Some(Ok(this.pending.split_to(n))));
        }
        if this.reading.is_none() {
            if this.remaining == 0 {
                return Poll::Ready(None);
            }
            if let Some(at) = this.delivered {
                if at.elapsed() > SLOW_READER {
                    this.next_read = FIRST_READ;
                    this.release_big();
                } else if this.sent >= PROVEN_BYTES && (this.big || this.claim_big()) {
                    this.next_read = (this.next_read * 2).min(MAX_READ);
                }
            }
            let n = this.remaining.min(this.next_read as u64) as usize;
            if let Some(bytes) = sys::read_cached(&this.file, this.offset, n).map(Bytes::from) {
                return Poll::Ready(Some(Ok(this.hand_out(bytes))));
            }
            let (file, offset) = (this.file.clone(), this.offset);
            this.reading = Some(tokio::task::spawn_blocking(move || {
                read_waiting(&file, offset, n)
            }));
        }
        let handle = this.reading.as_mut().expect("set above");
        match Pin::new(handle).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(joined) => {
                this.reading = None;
                match joined {
                    Ok(Ok(bytes)) => Poll::Ready(Some(Ok(this.hand_out(bytes)))),
                    Ok(Err(e)) => Poll::Ready(Some(Err(e))),
                    Err(e) => Poll::Ready(Some(Err(io::Error::other(e)))),
                }
            }
        }
    }
}

impl FileChunks {
    /// Accounts for a read and returns its first piece; the rest waits in `pending`.
    fn hand_out(&mut self, mut bytes: Bytes) -> Bytes {
        let n = bytes.len() as u64;
        self.offset += n;
        self.remaining -= n;
        self.sent += n;
        self.delivered = Some(std::time::Instant::now());
        let first = bytes.split_to(bytes.len().min(self.slice));
        self.pending = bytes;
        first
    }
}

/// Which call finds out whether pages are in the page cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CacheProbe {
    /// `cachestat(2)`, Linux 6.5 and later: counts pages without mapping anything.
    Cachestat,
    /// `mmap` + `mincore(2)` + `munmap`, on every Linux: maps the range without touching it.
    Mincore,
}

/// The probe this kernel allows, found once per process. `FLARE_FAULTS=no-cachestat` makes it
/// take the older kernels' way, for the tests.
pub(crate) fn cache_probe() -> Option<CacheProbe> {
    static PROBE: std::sync::OnceLock<Option<CacheProbe>> = std::sync::OnceLock::new();
    *PROBE.get_or_init(|| {
        let file = File::open("/proc/self/exe").ok()?;
        if !crate::faults::armed_at("no-cachestat") && sys::cachestat(&file, 0, 1).is_some() {
            return Some(CacheProbe::Cachestat);
        }
        sys::mincore(&file, 0, 1).map(|_| CacheProbe::Mincore)
    })
}

/// Whether the page cache holds every page of `len` bytes at `offset`, without reading or
/// faulting any of them. `None` when the kernel allows no probe (a seccomp filter).
pub fn is_cached(file: &File, offset: u64, len: u64) -> Option<bool> {
    match cache_probe()? {
        CacheProbe::Cachestat => sys::cachestat(file, offset, len),
        CacheProbe::Mincore => sys::mincore(file, offset, len),
    }
}

/// Reads `len` bytes at `offset` into the page cache, waiting for the disk. Blocking.
pub(crate) fn load_into_cache(file: &File, offset: u64, len: u64) -> io::Result<()> {
    let n = usize::try_from(len).map_err(io::Error::other)?;
    read_waiting(file, offset, n).map(drop)
}

/// Exactly `n` bytes at `offset`, waiting for the disk if need be. Blocking.
pub(super) fn read_waiting(file: &File, offset: u64, n: usize) -> io::Result<Bytes> {
    use std::io::Read;
    // read_to_end fills spare capacity without zeroing it first.
    let mut buf = Vec::with_capacity(n);
    PositionedReader { file, offset }
        .take(n as u64)
        .read_to_end(&mut buf)?;
    if buf.len() < n {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(Bytes::from(buf))
}

/// `Read` at an explicit position, so a file shared between reads never moves its offset.
struct PositionedReader<'a> {
    file: &'a File,
    offset: u64,
}

impl io::Read for PositionedReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let n = self.file.read_at(buf, self.offset)?;
        self.offset += n as u64;
        Ok(n)
    }
}

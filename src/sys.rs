//! Every `unsafe` block of flare: Linux system calls behind safe functions. The crate denies
//! unsafe code everywhere else (`lib.rs`).

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

/// glibc gives each thread that allocates its own arena, up to 8 per core; with a blocking
/// thread per concurrent file read, freed chunks scatter over many arenas and resident memory
/// climbs with the number of viewers. Two arenas keep it flat. Call before any thread starts.
pub fn limit_malloc_arenas() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only tunes the allocator; called before any thread is started.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Hands the pages of freed memory back to the kernel. An upload to a bucket holds a few parts
/// of 8 MiB at a time; once freed, glibc keeps them for reuse inside its arenas, so an upload
/// after a different kind (a PUT after a resumable one) would add its parts to what is kept.
/// Called when such an upload ends; it costs a walk over the two arenas.
pub fn release_free_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only returns free pages to the kernel; it is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Bytes an unprivileged writer can still put on the file system holding `path` (statvfs).
pub(crate) fn free_bytes(path: &Path) -> io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path holds a NUL byte"))?;
    // SAFETY: statvfs is plain data, for which all zeroes is a valid value.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is a valid C string and `stat` a properly sized, writable struct.
    if unsafe { libc::statvfs(path.as_ptr(), &mut stat) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(stat.f_bavail as u64 * stat.f_frsize as u64)
}

/// Raises this process's open-files limit to the hard limit; the limit then in force.
pub fn raise_open_files_limit() -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit for the call to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: a valid rlimit, only read by the call.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(io::Error::last_os_error());
        }
        lim = raised;
    }
    Ok(lim.rlim_cur)
}

/// One `send(2)` of `data` without SIGPIPE; `more` sets MSG_MORE (a body follows, so a small
/// head and the first body bytes leave in one packet). Non-blocking sockets answer WouldBlock.
pub fn send(socket: &impl AsRawFd, data: &[u8], more: bool) -> io::Result<usize> {
    let flags = libc::MSG_NOSIGNAL | if more { libc::MSG_MORE } else { 0 };
    // SAFETY: the pointer and length are those of `data`, which outlives the call.
    let n = unsafe { libc::send(socket.as_raw_fd(), data.as_ptr().cast(), data.len(), flags) };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// One `sendfile(2)` of up to `count` bytes of `file` from `*offset`, which it moves past what
/// was sent.
pub fn sendfile(
    socket: &impl AsRawFd,
    file: &File,
    offset: &mut u64,
    count: usize,
) -> io::Result<usize> {
    let mut pos = libc::off_t::try_from(*offset).map_err(io::Error::other)?;
    // SAFETY: two open descriptors and a valid offset pointer; sendfile moves it past what it
    // sent.
    let n = unsafe { libc::sendfile(socket.as_raw_fd(), file.as_raw_fd(), &mut pos, count) };
    let n = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
    *offset = u64::try_from(pos).map_err(io::Error::other)?;
    Ok(n)
}

/// Drops a file's clean pages from the page cache (tests use it to make a read go to disk).
pub fn drop_from_cache(file: &File) {
    // SAFETY: advice on an open descriptor; it changes no memory of ours.
    unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
}

/// `mincore(2)` over a fresh read-only mapping of the range: one residency byte per page. The
/// mapping is never touched, so no page is faulted in. `None` when the calls are refused.
pub fn mincore(file: &File, offset: u64, len: u64) -> Option<bool> {
    if len == 0 {
        return Some(true);
    }
    let page = page_size();
    let start = offset / page * page;
    let map_len = usize::try_from(offset + len - start).ok()?;
    let at = libc::off_t::try_from(start).ok()?;
    // SAFETY: a new private mapping of an open descriptor; it is only passed to mincore and
    // munmap below, never read through.
    let addr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            map_len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            at,
        )
    };
    if addr == libc::MAP_FAILED {
        return match io::Error::last_os_error().raw_os_error() {
            Some(libc::ENOSYS | libc::EPERM) => None,
            _ => Some(false),
        };
    }
    let mut resident = vec![0u8; map_len.div_ceil(page as usize)];
    // SAFETY: `addr` is the page-aligned mapping of `map_len` bytes made above, and `resident`
    // has one byte per page of it.
    let r = unsafe { libc::mincore(addr, map_len, resident.as_mut_ptr()) };
    // SAFETY: unmaps exactly the mapping made above.
    unsafe { libc::munmap(addr, map_len) };
    if r != 0 {
        return None;
    }
    Some(resident.iter().all(|b| b & 1 == 1))
}

/// `cachestat(2)` (Linux 6.5 and later), which counts pages without touching them. `None` where
/// the call is missing or refused (an older kernel, a seccomp filter).
pub fn cachestat(file: &File, offset: u64, len: u64) -> Option<bool> {
    // 451 in the unified syscall table that x86_64, aarch64, riscv64 and most others share;
    // not on alpha or MIPS, where this returns None (ENOSYS would be another call's number).
    #[cfg(not(any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "riscv64",
        target_arch = "x86",
        target_arch = "arm",
        target_arch = "loongarch64",
        target_arch = "powerpc64",
        target_arch = "s390x"
    )))]
    return None;
    const SYS_CACHESTAT: libc::c_long = 451;
    #[repr(C)]
    struct Range {
        off: u64,
        len: u64,
    }
    #[repr(C)]
    #[derive(Default)]
    struct Stat {
        nr_cache: u64,
        nr_dirty: u64,
        nr_writeback: u64,
        nr_evicted: u64,
        nr_recently_evicted: u64,
    }
    if len == 0 {
        return Some(true);
    }
    let range = Range { off: offset, len };
    let mut stat = Stat::default();
    // SAFETY: both structs have the kernel's layout (include/uapi/linux/mman.h) and outlive the
    // call, which only writes into `stat`.
    let r = unsafe {
        libc::syscall(
            SYS_CACHESTAT,
            file.as_raw_fd(),
            &range as *const Range,
            &mut stat as *mut Stat,
            0u32,
        )
    };
    if r != 0 {
        return match io::Error::last_os_error().raw_os_error() {
            Some(libc::ENOSYS | libc::EPERM) => None,
            // Not answerable for this file: treat it as not cached.
            _ => Some(false),
        };
    }
    let page = page_size();
    let pages = (offset + len - 1) / page - offset / page + 1;
    Some(stat.nr_cache >= pages)
}

pub(crate) fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
}

/// Up to `n` bytes at `offset`, if the page cache holds them: `preadv2` with `RWF_NOWAIT`
/// returns at once rather than wait for the disk. `None` when nothing could be read that way
/// (not cached, or a kernel or file system without the flag): the caller reads on a blocking
/// thread. Copying a cached megabyte costs less than handing the read to another thread and
/// back, and nothing here can wait on the disk.
pub(crate) fn read_cached(file: &File, offset: u64, n: usize) -> Option<Vec<u8>> {
    let mut buf: Vec<u8> = Vec::with_capacity(n);
    let iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: n,
    };
    let offset = libc::off_t::try_from(offset).ok()?;
    // SAFETY: the one iovec points at `n` bytes of capacity owned by `buf`, which outlives the
    // call; the kernel writes at most `n` bytes, and `set_len` only covers what it wrote.
    let got = unsafe { libc::preadv2(file.as_raw_fd(), &iov, 1, offset, libc::RWF_NOWAIT) };
    if got <= 0 {
        return None;
    }
    // SAFETY: the kernel wrote `got` (> 0, at most `n`) bytes into `buf`'s capacity.
    unsafe { buf.set_len(got as usize) };
    Some(buf)
}

/// Makes a helper process (ffmpeg) run at the lowest CPU priority (nice 19), so that a
/// transcode never slows serving, and die with the server, so that a killed server leaves no
/// transcode running. Applied between fork and exec.
pub(crate) fn helper_process(cmd: &mut tokio::process::Command) {
    // SAFETY: the closure runs in the forked child before exec and only makes two system calls
    // (setpriority, prctl), both async-signal-safe, touching no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            libc::setpriority(libc::PRIO_PROCESS, 0, 19);
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

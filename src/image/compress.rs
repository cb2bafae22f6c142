//! Parallel, deterministic gzip (the pigz scheme): the stream is cut into fixed 128 KiB blocks,
//! each deflated on its own (stock zlib, through flate2's `zlib` backend, built from the
//! vendored source) with the previous 32 KiB of input as its dictionary and ended with a sync
//! flush (the last one finished), then joined in order into one gzip member with the CRC32s
//! combined. A block's bytes depend only on its input and the one before it, so the output is
//! the same for any thread count on any machine. flate2 is used directly because no kept crate
//! promises bytes independent of the thread count (gzp's block size, dictionary and flush
//! rules are implementation details it may change).
//!
//! Why stock zlib and not zlib-rs (measured, README "Reproducibility"): zlib-rs's levels 1-8
//! hash 4 bytes (zlib-ng's design) and miss 3-byte matches: its level 6 is 1.8% (Go binary)
//! to 2.8% (node) larger than GNU `gzip -6`. zlib's level 5 is 0.7-0.8% larger, as fast as the
//! zlib-rs settings that come that close (level 9 tuned down, which flate2 cannot ask for),
//! and zlib's deflate has no CPU-dependent code paths.
//!
//! Three kinds of threads, so that neither hash serialises the compression: the caller
//! produces the stream (the tar), workers deflate blocks, and one writer thread puts blocks in
//! order, writes them and hashes both the uncompressed and the compressed bytes.

use crate::support::digest::{Digest, HashWriter};
use flate2::{Compress, Compression, Crc, FlushCompress, Status};
use sha2::{Digest as _, Sha256};
use std::io::{self, Write};
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};

/// Input bytes per block: part of the scheme (it changes the bytes).
pub const BLOCK: usize = 128 * 1024;
/// Bytes of the previous block given as dictionary: deflate's whole window.
pub const WINDOW: usize = 32 * 1024;
/// More threads than this gain little on one stream and cost memory.
pub const MAX_THREADS: usize = 8;

/// How to compress; `threads` changes only the speed, never the bytes.
#[derive(Clone, Copy, Debug)]
pub struct Gzip {
    pub level: u32,
    pub threads: usize,
}

impl Gzip {
    /// `level` on every available core (capped at [`MAX_THREADS`]).
    pub fn new(level: u32) -> Gzip {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Gzip {
            level,
            threads: cores.clamp(1, MAX_THREADS),
        }
    }
}

/// The digests and sizes of both sides of a compressed stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sums {
    /// sha256 of the gzip bytes.
    pub digest: Digest,
    pub size: u64,
    /// sha256 of the uncompressed bytes.
    pub diff_id: Digest,
    pub uncompressed_size: u64,
}

struct Job {
    prev: Option<Arc<Vec<u8>>>,
    data: Arc<Vec<u8>>,
    last: bool,
    reply: SyncSender<io::Result<Done>>,
}

struct Done {
    deflate: Vec<u8>,
    crc: Crc,
    data: Arc<Vec<u8>>,
    last: bool,
}

/// Runs `produce` with a writer whose bytes are gzip-compressed into `out`, and returns what
/// it returned, `out` and the sums. On an error nothing more is written to `out` (no trailer).
pub fn gzip<W, T, E>(
    out: W,
    opts: Gzip,
    produce: impl FnOnce(&mut dyn Write) -> Result<T, E>,
) -> Result<(T, W, Sums), E>
where
    W: Write + Send,
    E: From<io::Error>,
{
    let threads = opts.threads.clamp(1, MAX_THREADS);
    let (jobs_tx, jobs_rx) = channel::<Job>();
    let jobs_rx = Arc::new(Mutex::new(jobs_rx));
    // Bounds the blocks in flight, so memory does not grow with the stream.
    let (order_tx, order_rx) = sync_channel::<Receiver<io::Result<Done>>>(threads * 2);
    std::thread::scope(|s| {
        for _ in 0..threads {
            let rx = Arc::clone(&jobs_rx);
            s.spawn(move || worker(&rx, opts.level));
        }
        let writer = s.spawn(move || write_in_order(order_rx, out, opts.level));
        let mut sink = Blocks {
            cur: Vec::with_capacity(BLOCK),
            prev: None,
            jobs: jobs_tx,
            order: order_tx,
        };
        let produced = produce(&mut sink).and_then(|t| {
            sink.dispatch(true)?;
            Ok(t)
        });
        drop(sink);
        let written = writer.join().expect("the gzip writer does not panic");
        // The writer's error (a full disk) is the cause of the producer's broken pipe.
        let (out, sums) = written?;
        Ok((produced?, out, sums))
    })
}

/// The writer handed to the producer: cuts the stream into blocks and sends them out.
struct Blocks {
    cur: Vec<u8>,
    prev: Option<Arc<Vec<u8>>>,
    jobs: Sender<Job>,
    order: SyncSender<Receiver<io::Result<Done>>>,
}

impl Blocks {
    /// Sends the current block. A full block is never the last one: the last is what remains
    /// at the end (maybe nothing), so the cut depends only on the length of the stream.
    fn dispatch(&mut self, last: bool) -> io::Result<()> {
        let data = Arc::new(std::mem::replace(&mut self.cur, Vec::with_capacity(BLOCK)));
        let (reply, result) = sync_channel(1);
        let gone = || io::Error::new(io::ErrorKind::BrokenPipe, "the gzip writer stopped");
        self.jobs
            .send(Job {
                prev: self.prev.replace(Arc::clone(&data)),
                data,
                last,
                reply,
            })
            .map_err(|_| gone())?;
        self.order.send(result).map_err(|_| gone())
    }
}

impl Write for Blocks {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(BLOCK - self.cur.len());
        self.cur.extend_from_slice(&buf[..n]);
        if self.cur.len() == BLOCK {
            self.dispatch(false)?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn worker(jobs: &Mutex<Receiver<Job>>, level: u32) {
    loop {
        let job = match jobs.lock().map(|rx| rx.recv()) {
            Ok(Ok(job)) => job,
            _ => return,
        };
        // A fresh state per block, so no state can leak from one block to the next (zlib-rs's
        // reset() did: sizes varied with which blocks a worker had had).
        let mut c = Compress::new(Compression::new(level), false);
        let deflated = deflate_block(&mut c, job.prev.as_deref(), &job.data, job.last);
        let done = deflated.map(|deflate| {
            let mut crc = Crc::new();
            crc.update(&job.data);
            Done {
                deflate,
                crc,
                data: job.data,
                last: job.last,
            }
        });
        // The writer is gone only after an error it reports itself.
        let _ = job.reply.send(done);
    }
}

/// One block as raw deflate, primed with the end of `prev`, ended by a sync flush (an empty
/// stored block, so blocks join on a byte boundary) or, for the last, by the final block.
fn deflate_block(
    c: &mut Compress,
    prev: Option<&Vec<u8>>,
    data: &[u8],
    last: bool,
) -> io::Result<Vec<u8>> {
    let failed = |e: flate2::CompressError| io::Error::other(e.to_string());
    if let Some(p) = prev {
        c.set_dictionary(&p[p.len().saturating_sub(WINDOW)..])
            .map_err(failed)?;
    }
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut out = Vec::with_capacity(data.len() + data.len() / 8 + 64);
    let start = c.total_in();
    loop {
        if out.len() == out.capacity() {
            out.reserve(16 * 1024);
        }
        let used = (c.total_in() - start) as usize;
        let status = c
            .compress_vec(&data[used..], &mut out, flush)
            .map_err(failed)?;
        let all_in = (c.total_in() - start) as usize == data.len();
        // Done when all input is in and the flush left room (so nothing is pending).
        let done = match status {
            Status::StreamEnd => true,
            _ => !last && all_in && out.len() < out.capacity(),
        };
        if done {
            return Ok(out);
        }
    }
}

/// gzip header as flate2's GzBuilder writes it with mtime 0 and OS 255 (unknown).
fn header(level: u32) -> [u8; 10] {
    let xfl = match level {
        9.. => 2,
        0..=1 => 4,
        _ => 0,
    };
    [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255]
}

fn write_in_order<W: Write>(
    order: Receiver<Receiver<io::Result<Done>>>,
    mut out: W,
    level: u32,
) -> io::Result<(W, Sums)> {
    let (mut zipped, mut plain) = (Sha256::new(), Sha256::new());
    let (mut size, mut plain_size) = (0u64, 0u64);
    let mut crc = Crc::new();
    let mut put = |out: &mut W, bytes: &[u8]| -> io::Result<()> {
        out.write_all(bytes)?;
        zipped.update(bytes);
        size += bytes.len() as u64;
        Ok(())
    };
    put(&mut out, &header(level))?;
    for result in order {
        // A worker always replies; a closed reply means the stream was abandoned.
        let Ok(block) = result.recv() else { break };
        let block = block?;
        put(&mut out, &block.deflate)?;
        plain.update(block.data.as_slice());
        plain_size += block.data.len() as u64;
        crc.combine(&block.crc);
        if block.last {
            let mut trailer = crc.sum().to_le_bytes().to_vec();
            trailer.extend_from_slice(&(plain_size as u32).to_le_bytes());
            put(&mut out, &trailer)?;
        }
    }
    let sums = Sums {
        digest: Digest::from_hasher(zipped),
        size,
        diff_id: Digest::from_hasher(plain),
        uncompressed_size: plain_size,
    };
    Ok((out, sums))
}

/// zstd level: zstd's own default, the knee of its speed against size.
pub const ZSTD_LEVEL: i32 = 3;

/// [`gzip`]'s counterpart for `--compression zstd`: one frame, single-threaded (zstd's
/// worker mode changes the bytes), level [`ZSTD_LEVEL`], with a checksum, the content size
/// unknown (it streams). zstd is fast enough on one core that threads would gain little.
pub fn zstd<W, T, E>(
    out: W,
    produce: impl FnOnce(&mut dyn Write) -> Result<T, E>,
) -> Result<(T, W, Sums), E>
where
    W: Write,
    E: From<io::Error>,
{
    let mut enc = zstd::stream::Encoder::new(HashWriter::new(out), ZSTD_LEVEL)?;
    enc.include_checksum(true)?;
    enc.include_contentsize(false)?;
    enc.include_dictid(false)?;
    let mut plain = HashWriter::new(enc);
    let t = produce(&mut plain)?;
    let (enc, diff_id, uncompressed_size) = plain.finish();
    let (out, digest, size) = enc.finish()?.finish();
    let sums = Sums {
        digest,
        size,
        diff_id,
        uncompressed_size,
    };
    Ok((t, out, sums))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_zlib_linked_is_the_one_the_scheme_names() {
        // A system zlib (LIBZ_SYS_STATIC=0) or zlib-ng writes other bytes: digests would
        // change under the same scheme name.
        let v = unsafe { std::ffi::CStr::from_ptr(libz_sys::zlibVersion()) };
        let v = v.to_str().unwrap();
        assert!(
            crate::image::layers::SCHEME.contains(&format!("zlib-{v} ")),
            "{v}"
        );
    }
    use std::io::Read;

    fn zip(data: &[u8], threads: usize) -> (Vec<u8>, Sums) {
        let opts = Gzip { level: 6, threads };
        let ((), out, sums) = gzip(Vec::new(), opts, |w| w.write_all(data)).expect("compresses");
        (out, sums)
    }

    #[test]
    fn round_trips_at_every_block_edge() {
        for len in [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let (out, sums) = zip(&data, 3);
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(out.as_slice())
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, data, "length {len}");
            assert_eq!(sums.diff_id, Digest::of(&data));
            assert_eq!(sums.digest, Digest::of(&out));
            assert_eq!(sums.size, out.len() as u64);
        }
    }
}

//! `.img.xz` → `.img`, in pure Rust (lzma-rust2, a worker per core), sparse: runs of zeros become holes, so a
//! 2 GB image with 1 GB of data costs 1 GB of disk and no time writing zeros.

use super::{ImageError, io};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

const CHUNK: usize = 1 << 20;

pub fn decompress(input: &Path, out: &Path) -> Result<u64, ImageError> {
    let src = std::io::BufReader::with_capacity(CHUNK, std::fs::File::open(input).map_err(io(input))?);
    // One worker per core over the stream's blocks (xz -T and pi-gen write several).
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8) as u32;
    let mut xz = lzma_rust2::XzReaderMt::new(src, true, workers).map_err(io(input))?;
    let mut dst = std::fs::File::create(out).map_err(io(out))?;
    let mut buf = vec![0u8; CHUNK];
    let mut total: u64 = 0;
    loop {
        let n = super::device::read_full(&mut xz, &mut buf).map_err(io(input))?;
        if n == 0 {
            break;
        }
        if buf[..n].iter().all(|&b| b == 0) {
            dst.seek(SeekFrom::Current(n as i64)).map_err(io(out))?;
        } else {
            dst.write_all(&buf[..n]).map_err(io(out))?;
        }
        total += n as u64;
        if n < buf.len() {
            break;
        }
    }
    dst.set_len(total).map_err(io(out))?;
    Ok(total)
}

//! File content: a pseudo-random byte stream addressable by offset, to write
//! large files and check them by streaming, and a streaming `cmp`.

use std::io::{Read, Write};
use std::path::Path;

/// Pseudo-random bytes addressable by offset: byte `i` of the stream for
/// `seed` is always the same, so any part can be regenerated to check it.
pub fn pseudo_random(seed: u64, offset: u64, out: &mut [u8]) {
    let mut pos = offset;
    let mut i = 0;
    while i < out.len() {
        let word = splitmix64(seed ^ (pos / 8).wrapping_mul(0x9E37_79B9_7F4A_7C15)).to_le_bytes();
        let from = (pos % 8) as usize;
        let n = (8 - from).min(out.len() - i);
        out[i..i + n].copy_from_slice(&word[from..from + n]);
        i += n;
        pos += n as u64;
    }
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `len` pseudo-random bytes of the stream for `seed` from `offset`.
pub fn pseudo_random_vec(seed: u64, offset: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0; len];
    pseudo_random(seed, offset, &mut out);
    out
}

/// Writes `len` bytes of the pseudo-random stream for `seed` to a new file
/// at `path` in 1 MiB writes, and closes it.
pub fn write_pseudo_random(path: &Path, seed: u64, len: u64) {
    let mut file =
        std::fs::File::create(path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
    let mut buf = vec![0; 1 << 20];
    let mut at = 0;
    while at < len {
        let n = (len - at).min(buf.len() as u64) as usize;
        pseudo_random(seed, at, &mut buf[..n]);
        file.write_all(&buf[..n])
            .unwrap_or_else(|e| panic!("writing {} at {at}: {e}", path.display()));
        at += n as u64;
    }
    drop(file);
}

/// Reads as much of `buf` as the reader gives (short only at its end).
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match reader.read(&mut buf[done..]) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Compares two files byte for byte by streaming them, like `cmp`:
/// `Ok(())` when identical, else a description of the first difference.
pub fn cmp(a: &Path, b: &Path) -> Result<(), String> {
    let open = |p: &Path| std::fs::File::open(p).map_err(|e| format!("{}: {e}", p.display()));
    let (mut fa, mut fb) = (open(a)?, open(b)?);
    let (mut ba, mut bb) = (vec![0; 1 << 20], vec![0; 1 << 20]);
    let mut offset = 0u64;
    loop {
        let na =
            read_full(&mut fa, &mut ba).map_err(|e| format!("reading {}: {e}", a.display()))?;
        let nb =
            read_full(&mut fb, &mut bb).map_err(|e| format!("reading {}: {e}", b.display()))?;
        let n = na.min(nb);
        if let Some(i) = (0..n).find(|&i| ba[i] != bb[i]) {
            return Err(format!(
                "{} and {} differ at byte {}",
                a.display(),
                b.display(),
                offset + i as u64
            ));
        }
        if na != nb {
            let shorter = if na < nb { a } else { b };
            return Err(format!(
                "EOF on {} after byte {}",
                shorter.display(),
                offset + n as u64
            ));
        }
        if na == 0 {
            return Ok(());
        }
        offset += na as u64;
    }
}

/// Checks by streaming that the file at `path` holds exactly `len` bytes of
/// the pseudo-random stream for `seed`.
pub fn check_pseudo_random(path: &Path, seed: u64, len: u64) -> Result<(), String> {
    let mut file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (mut got, mut want) = (vec![0; 1 << 20], vec![0; 1 << 20]);
    let mut offset = 0u64;
    loop {
        let n = read_full(&mut file, &mut got)
            .map_err(|e| format!("reading {} at {offset}: {e}", path.display()))?;
        let expected = (len - offset).min(want.len() as u64) as usize;
        pseudo_random(seed, offset, &mut want[..expected]);
        if let Some(i) = (0..n.min(expected)).find(|&i| got[i] != want[i]) {
            return Err(format!(
                "{} differs from what was written at byte {}",
                path.display(),
                offset + i as u64
            ));
        }
        if n != expected {
            return Err(format!(
                "{} holds {} bytes, {len} were written",
                path.display(),
                offset + n as u64
            ));
        }
        if n == 0 {
            return Ok(());
        }
        offset += n as u64;
    }
}

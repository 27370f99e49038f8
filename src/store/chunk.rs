//! Compressed float chunks: delta-of-delta timestamps plus XOR'd or integer-delta values in one bit stream.
//!
//! A series keeps all its chunks in one byte buffer: sealed chunks, each behind a small varint header, then the
//! open head chunk's bits at the end (see `series.rs`). One allocation per series instead of one per chunk.
//!
//! Stream layout (the first timestamp lives in the header / encoder state, not in the stream):
//! - 1 bit value mode: `0` XOR (Gorilla), `1` integer;
//! - the first value's 64 raw bits;
//! - per further sample: a timestamp code, then a value code.
//!
//! Timestamp codes (`dod` = this delta minus the previous delta, the first delta taken against 0), two's
//! complement, wrapping arithmetic so any strictly increasing `i64` sequence round-trips:
//! `0` → 0; `10` + 8 bits; `110` + 13 bits; `1110` + 20 bits; `11110` + 32 bits; `11111` + 64 bits. The 8-bit
//! step covers scrape jitter of tens of milliseconds (a jittered timestamp's dod spans twice its jitter).
//!
//! XOR value codes (`x` = bits XOR previous bits): `0` → same value; `10` + the meaningful bits inside the
//! previous window; `11` + 5 bits leading zeros (capped at 31) + 6 bits length (64 written as 0) + the bits.
//!
//! Integer value codes, for values that are exactly integers below 2^53 (counters; `-0.0` is not one): `dod` =
//! this integer delta minus the previous one; `0` → 0; `10` + `w` bits in the current width; `110` + 6 bits
//! new width − 1 + that many bits; `111` + 64 raw bits for any other value (NaN, the stale marker, fractions),
//! which leaves the integer state untouched. Values are bit-exact in both modes: NaN payloads, the stale
//! marker, ±Inf and -0.0 survive.
//!
//! When a chunk is sealed it is re-encoded in the other mode if that might be smaller (an integer chunk that
//! needed escapes, an XOR chunk of integers) and the smaller form is kept; the winner's mode seeds the next chunk.

/// Largest value the integer mode encodes: beyond 2^53 not every integer is a float.
const INT_LIMIT: f64 = 9_007_199_254_740_992.0;

/// The integer an integral float stands for, if the round trip is bit-exact.
#[inline]
fn as_exact_int(v: f64) -> Option<i64> {
    if v.abs() < INT_LIMIT && v.trunc() == v {
        let i = v as i64;
        ((i as f64).to_bits() == v.to_bits()).then_some(i)
    } else {
        None
    }
}

/// Appends the low `n` bits of `v` (`n <= 64`), most significant first, to a stream ending at `buf`'s end with
/// `*nbits` bits written (so the last byte is partial when `*nbits % 8 != 0`).
#[inline]
fn write_bits(buf: &mut Vec<u8>, nbits: &mut u32, v: u64, n: u32) {
    let mut n = n.min(64);
    while n > 0 {
        let used = *nbits % 8;
        if used == 0 {
            if buf.len() == buf.capacity() {
                // Grow by an eighth (at least 16 bytes) instead of doubling: the buffer lives as long as the
                // series, and doubling would leave up to half of it unused.
                let extra = (buf.len() / 4).max(16);
                buf.reserve_exact(extra);
            }
            buf.push(0);
        }
        let free = 8 - used;
        let take = free.min(n);
        let bits = ((v >> (n - take)) & ((1u64 << take) - 1)) as u8;
        if let Some(last) = buf.last_mut() {
            *last |= bits << (free - take);
        }
        n -= take;
        *nbits += take;
    }
}

/// Bit stream reader; every read past the end yields `None` rather than panicking.
#[derive(Debug, Clone)]
pub(crate) struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> BitReader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        BitReader {
            data,
            pos: 0,
            end: data.len() * 8,
        }
    }

    /// The next 64 bits (zero-padded past the end) without consuming them.
    #[inline]
    fn peek(&self) -> u64 {
        let byte = self.pos >> 3;
        let shift = self.pos & 7;
        if let Some(b) = self.data.get(byte..byte + 8) {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            let w = u64::from_be_bytes(a) << shift;
            if shift == 0 {
                w
            } else {
                w | (u64::from(self.data.get(byte + 8).copied().unwrap_or(0)) >> (8 - shift))
            }
        } else {
            let mut a = [0u8; 9];
            let rest = self.data.get(byte..).unwrap_or(&[]);
            a[..rest.len()].copy_from_slice(rest);
            let mut w8 = [0u8; 8];
            w8.copy_from_slice(&a[..8]);
            let w = u64::from_be_bytes(w8) << shift;
            if shift == 0 {
                w
            } else {
                w | (u64::from(a[8]) >> (8 - shift))
            }
        }
    }

    /// Consumes `n` bits, failing if fewer remain.
    #[inline]
    fn skip(&mut self, n: u32) -> Option<()> {
        let p = self.pos + n as usize;
        if p > self.end {
            return None;
        }
        self.pos = p;
        Some(())
    }

    /// Reads `n <= 64` bits as an unsigned number.
    #[inline]
    pub(crate) fn read_bits(&mut self, n: u32) -> Option<u64> {
        if n == 0 {
            return Some(0);
        }
        let v = self.peek() >> (64 - n.min(64));
        self.skip(n)?;
        Some(v)
    }
}

/// Sign-extends the low `n` bits of `v` (`1 <= n <= 64`).
#[inline]
fn sign_extend(v: u64, n: u32) -> i64 {
    let shift = 64 - n.clamp(1, 64);
    ((v << shift) as i64) >> shift
}

/// Bits needed to hold `v` in two's complement.
#[inline]
fn signed_width(v: i64) -> u32 {
    let mag = if v < 0 { !v } else { v };
    (65 - mag.leading_zeros()).min(64)
}

/// Value mode of a chunk.
const MODE_XOR: u8 = 0;
const MODE_INT: u8 = 1;
/// Sentinel for "no XOR window yet".
const NO_WINDOW: u8 = 0xff;
/// `flags`: an integer-mode chunk escaped at least one value.
const F_ESCAPED: u8 = 1;
/// `flags`: every value of an XOR-mode chunk was an exact integer so far.
const F_ALL_INT: u8 = 2;
/// `flags`: the last sealed chunk came out smaller in XOR mode; start the next one in XOR mode.
const F_PREFER_XOR: u8 = 4;

/// Encoder state of the open head chunk, whose bits sit at the end of the series' buffer.
#[derive(Debug, Clone)]
pub(crate) struct HeadState {
    /// Byte offset in the series buffer where the head's bits begin (= length of the sealed prefix).
    start: u32,
    nbits: u32,
    count: u16,
    mode: u8,
    /// XOR: leading zeros of the window. Integer: current width.
    leading: u8,
    /// XOR: trailing zeros of the window.
    trailing: u8,
    flags: u8,
    mint: i64,
    last_t: i64,
    t_delta: i64,
    last_bits: u64,
    int_prev: i64,
    int_delta: i64,
}

impl Default for HeadState {
    fn default() -> Self {
        HeadState {
            start: 0,
            nbits: 0,
            count: 0,
            mode: MODE_XOR,
            leading: NO_WINDOW,
            trailing: 0,
            flags: 0,
            mint: 0,
            last_t: 0,
            t_delta: 0,
            last_bits: 0,
            int_prev: 0,
            int_delta: 0,
        }
    }
}

impl HeadState {
    /// Length of the sealed prefix of the buffer (where the head's bytes begin).
    pub(crate) fn start(&self) -> usize {
        self.start as usize
    }

    /// Marks the first `n` buffer bytes as dropped (GC removed sealed chunks in front).
    pub(crate) fn shift_start(&mut self, n: usize) {
        self.start = self
            .start
            .saturating_sub(u32::try_from(n).unwrap_or(u32::MAX));
    }

    /// Samples in the head.
    pub(crate) fn len(&self) -> u16 {
        self.count
    }

    /// Whether the head holds no sample.
    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Oldest timestamp (meaningless when empty).
    pub(crate) fn mint(&self) -> i64 {
        self.mint
    }

    /// Newest timestamp (meaningless when empty).
    pub(crate) fn maxt(&self) -> i64 {
        self.last_t
    }

    /// Bit pattern of the newest value (meaningless when empty).
    pub(crate) fn last_value_bits(&self) -> u64 {
        self.last_bits
    }

    /// Forgets the head (the caller truncates its bytes), keeping the mode preference and the start offset.
    pub(crate) fn reset(&mut self) {
        *self = HeadState {
            flags: self.flags & F_PREFER_XOR,
            start: self.start,
            ..HeadState::default()
        };
    }

    /// Appends a sample to the stream at the end of `buf`. The caller guarantees `t > maxt()` unless empty and
    /// that `len() < u16::MAX`.
    pub(crate) fn append(&mut self, buf: &mut Vec<u8>, t: i64, v: f64) {
        let vb = v.to_bits();
        if self.count == 0 {
            let exact = as_exact_int(v);
            self.mode = if exact.is_some() && self.flags & F_PREFER_XOR == 0 {
                MODE_INT
            } else {
                MODE_XOR
            };
            self.flags &= F_PREFER_XOR;
            if exact.is_some() {
                self.flags |= F_ALL_INT;
            }
            self.mint = t;
            self.last_t = t;
            self.t_delta = 0;
            self.last_bits = vb;
            self.leading = if self.mode == MODE_XOR { NO_WINDOW } else { 0 };
            self.trailing = 0;
            self.int_prev = exact.unwrap_or(0);
            self.int_delta = 0;
            write_bits(buf, &mut self.nbits, u64::from(self.mode), 1);
            write_bits(buf, &mut self.nbits, vb, 64);
            self.count = 1;
            return;
        }
        let delta = t.wrapping_sub(self.last_t);
        self.write_dod(buf, delta.wrapping_sub(self.t_delta));
        if self.mode == MODE_XOR {
            if as_exact_int(v).is_none() {
                self.flags &= !F_ALL_INT;
            }
            self.write_xor(buf, vb);
        } else {
            self.write_int(buf, v);
        }
        self.last_t = t;
        self.t_delta = delta;
        self.last_bits = vb;
        self.count = self.count.saturating_add(1);
    }

    fn write_dod(&mut self, buf: &mut Vec<u8>, dod: i64) {
        let (prefix, plen, n) = match signed_width(dod) {
            _ if dod == 0 => (0b0, 1, 0),
            0..=8 => (0b10, 2, 8),
            9..=13 => (0b110, 3, 13),
            14..=20 => (0b1110, 4, 20),
            21..=32 => (0b11110, 5, 32),
            _ => (0b11111, 5, 64),
        };
        write_bits(buf, &mut self.nbits, prefix, plen);
        write_bits(buf, &mut self.nbits, dod as u64, n);
    }

    fn write_xor(&mut self, buf: &mut Vec<u8>, vb: u64) {
        let x = vb ^ self.last_bits;
        if x == 0 {
            write_bits(buf, &mut self.nbits, 0, 1);
            return;
        }
        let lz = x.leading_zeros().min(31) as u8;
        let tz = x.trailing_zeros() as u8;
        if self.leading != NO_WINDOW && lz >= self.leading && tz >= self.trailing {
            let sig = 64 - u32::from(self.leading) - u32::from(self.trailing);
            write_bits(buf, &mut self.nbits, 0b10, 2);
            write_bits(buf, &mut self.nbits, x >> self.trailing, sig);
        } else {
            let sig = 64 - u32::from(lz) - u32::from(tz);
            write_bits(buf, &mut self.nbits, 0b11, 2);
            write_bits(buf, &mut self.nbits, u64::from(lz), 5);
            write_bits(buf, &mut self.nbits, u64::from(sig & 63), 6);
            write_bits(buf, &mut self.nbits, x >> tz, sig);
            self.leading = lz;
            self.trailing = tz;
        }
    }

    fn write_int(&mut self, buf: &mut Vec<u8>, v: f64) {
        let Some(i) = as_exact_int(v) else {
            self.flags |= F_ESCAPED;
            write_bits(buf, &mut self.nbits, 0b111, 3);
            write_bits(buf, &mut self.nbits, v.to_bits(), 64);
            return;
        };
        let delta = i.wrapping_sub(self.int_prev);
        let dod = delta.wrapping_sub(self.int_delta);
        self.int_prev = i;
        self.int_delta = delta;
        if dod == 0 {
            write_bits(buf, &mut self.nbits, 0, 1);
            return;
        }
        let need = signed_width(dod);
        let w = u32::from(self.leading);
        // Keep the current width if it fits and a new one would not save its own 7-bit cost.
        if w != 0 && need <= w && need + 7 >= w {
            write_bits(buf, &mut self.nbits, 0b10, 2);
            write_bits(buf, &mut self.nbits, dod as u64, w);
        } else {
            write_bits(buf, &mut self.nbits, 0b110, 3);
            write_bits(buf, &mut self.nbits, u64::from(need - 1), 6);
            write_bits(buf, &mut self.nbits, dod as u64, need);
            self.leading = need as u8;
        }
    }

    /// Seals the head (bytes `buf[start()..]`): re-encodes it in the other mode when that may be smaller,
    /// writes its header in front, and resets the state for the next chunk, which starts at the buffer's end.
    pub(crate) fn seal(&mut self, buf: &mut Vec<u8>) {
        let start = self.start().min(buf.len());
        if self.count == 0 {
            buf.truncate(start);
            return;
        }
        let alt_mode = match self.mode {
            MODE_INT if self.flags & F_ESCAPED != 0 => Some(MODE_XOR),
            MODE_XOR if self.flags & F_ALL_INT != 0 => Some(MODE_INT),
            _ => None,
        };
        let mut winner = self.mode;
        if let Some(alt) = alt_mode {
            let samples: Vec<(i64, f64)> =
                ChunkIter::new(buf.get(start..).unwrap_or(&[]), self.mint, self.count).collect();
            let mut other = Vec::with_capacity(buf.len() - start);
            let mut st = HeadState {
                flags: if alt == MODE_XOR { F_PREFER_XOR } else { 0 },
                ..HeadState::default()
            };
            for &(t, v) in &samples {
                st.append(&mut other, t, v);
            }
            if samples.len() == usize::from(self.count)
                && st.mode == alt
                && other.len() < buf.len() - start
            {
                buf.truncate(start);
                buf.extend_from_slice(&other);
                winner = alt;
            }
        }
        let mut header = [0u8; 40];
        let mut n = 0;
        for v in [
            zigzag(self.mint),
            self.last_t.wrapping_sub(self.mint) as u64,
            u64::from(self.count),
            (buf.len() - start) as u64,
        ] {
            n += put_varint(&mut header[n..], v);
        }
        buf.splice(start..start, header[..n].iter().copied());
        self.reset();
        self.start = u32::try_from(buf.len()).unwrap_or(u32::MAX);
        if winner == MODE_XOR && alt_mode.is_some() {
            self.flags |= F_PREFER_XOR;
        } else if winner == MODE_INT {
            self.flags &= !F_PREFER_XOR;
        }
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Writes `v` as LEB128 into `out` (which must hold 10 bytes); returns the length.
fn put_varint(out: &mut [u8], mut v: u64) -> usize {
    let mut n = 0;
    while let Some(b) = out.get_mut(n) {
        if v < 0x80 {
            *b = v as u8;
            return n + 1;
        }
        *b = (v as u8) | 0x80;
        v >>= 7;
        n += 1;
    }
    n
}

/// Reads a LEB128 value from the front of `data`, advancing it.
fn get_varint(data: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = data.split_first()?;
        *data = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

/// A sealed chunk found in a series buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SealedChunk<'a> {
    /// Oldest timestamp.
    pub(crate) mint: i64,
    /// Newest timestamp.
    pub(crate) maxt: i64,
    /// Number of samples.
    pub(crate) count: u16,
    /// The stream bytes.
    pub(crate) data: &'a [u8],
    /// Byte offset just past this chunk in the buffer.
    pub(crate) end: usize,
}

impl<'a> SealedChunk<'a> {
    /// Decodes the chunk.
    pub(crate) fn iter(&self) -> ChunkIter<'a> {
        ChunkIter::new(self.data, self.mint, self.count)
    }
}

/// Walks the sealed chunks in `sealed` (the buffer's sealed prefix), oldest first; stops at malformed data.
pub(crate) fn sealed_chunks(sealed: &[u8]) -> impl Iterator<Item = SealedChunk<'_>> + '_ {
    let mut rest = sealed;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut p = rest;
        let mint = unzigzag(get_varint(&mut p)?);
        let maxt = mint.wrapping_add(get_varint(&mut p)? as i64);
        let count = u16::try_from(get_varint(&mut p)?).ok()?;
        let len = usize::try_from(get_varint(&mut p)?).ok()?;
        let data = p.get(..len)?;
        rest = p.get(len..)?;
        Some(SealedChunk {
            mint,
            maxt,
            count,
            data,
            end: sealed.len() - rest.len(),
        })
    })
}

/// Decoder yielding `(t, value)` in time order; stops early (never panics) on truncated data.
#[derive(Debug, Clone)]
pub(crate) struct ChunkIter<'a> {
    r: BitReader<'a>,
    remaining: u16,
    started: bool,
    mode: u8,
    t: i64,
    t_delta: i64,
    bits: u64,
    leading: u32,
    trailing: u32,
    int_prev: i64,
    int_delta: i64,
    width: u32,
}

impl<'a> ChunkIter<'a> {
    /// A decoder over a stream of `count` samples whose first timestamp is `mint`.
    pub(crate) fn new(data: &'a [u8], mint: i64, count: u16) -> Self {
        ChunkIter {
            r: BitReader::new(data),
            remaining: count,
            started: false,
            mode: MODE_XOR,
            t: mint,
            t_delta: 0,
            bits: 0,
            leading: 0,
            trailing: 0,
            int_prev: 0,
            int_delta: 0,
            width: 0,
        }
    }

    #[inline]
    fn read_dod(&mut self) -> Option<i64> {
        let w = self.r.peek();
        let (plen, n) = match w.leading_ones() {
            0 => {
                self.r.skip(1)?;
                return Some(0);
            }
            1 => (2, 8),
            2 => (3, 13),
            3 => (4, 20),
            4 => (5, 32),
            _ => (5, 64),
        };
        if n == 64 {
            self.r.skip(plen)?;
            return self.r.read_bits(64).map(|v| v as i64);
        }
        let raw = (w << plen) >> (64 - n);
        self.r.skip(plen + n)?;
        Some(sign_extend(raw, n))
    }

    #[inline]
    fn read_xor(&mut self) -> Option<u64> {
        let w = self.r.peek();
        if w >> 63 == 0 {
            self.r.skip(1)?;
            return Some(self.bits);
        }
        if (w >> 62) & 1 == 0 {
            self.r.skip(2)?;
        } else {
            let lz = ((w >> 57) & 31) as u32;
            let mut sig = ((w >> 51) & 63) as u32;
            if sig == 0 {
                sig = 64;
            }
            // A corrupt stream could claim more than 64 bits; refuse instead of overflowing shifts.
            if lz + sig > 64 {
                return None;
            }
            self.r.skip(13)?;
            self.leading = lz;
            self.trailing = 64 - lz - sig;
        }
        let sig = 64 - self.leading - self.trailing;
        let bits = self.r.read_bits(sig)?;
        let x = if self.trailing >= 64 {
            0
        } else {
            bits << self.trailing
        };
        Some(self.bits ^ x)
    }

    #[inline]
    fn read_int(&mut self) -> Option<u64> {
        let w = self.r.peek();
        let dod = match w.leading_ones() {
            0 => {
                self.r.skip(1)?;
                0
            }
            1 => {
                let n = self.width;
                if n == 0 {
                    return None;
                }
                self.r.skip(2)?;
                sign_extend(self.r.read_bits(n)?, n)
            }
            2 => {
                let n = ((w >> 55) & 63) as u32 + 1;
                self.r.skip(9)?;
                self.width = n;
                sign_extend(self.r.read_bits(n)?, n)
            }
            _ => {
                self.r.skip(3)?;
                return self.r.read_bits(64);
            }
        };
        self.int_delta = self.int_delta.wrapping_add(dod);
        self.int_prev = self.int_prev.wrapping_add(self.int_delta);
        Some((self.int_prev as f64).to_bits())
    }

    #[inline]
    fn step(&mut self) -> Option<(i64, f64)> {
        if !self.started {
            self.started = true;
            self.mode = self.r.read_bits(1)? as u8;
            self.bits = self.r.read_bits(64)?;
            let v = f64::from_bits(self.bits);
            if self.mode == MODE_INT {
                self.int_prev = as_exact_int(v)?;
            }
            return Some((self.t, v));
        }
        let dod = self.read_dod()?;
        self.t_delta = self.t_delta.wrapping_add(dod);
        self.t = self.t.wrapping_add(self.t_delta);
        self.bits = if self.mode == MODE_XOR {
            self.read_xor()?
        } else {
            self.read_int()?
        };
        Some((self.t, f64::from_bits(self.bits)))
    }
}

impl Iterator for ChunkIter<'_> {
    type Item = (i64, f64);

    #[inline]
    fn next(&mut self) -> Option<(i64, f64)> {
        if self.remaining == 0 {
            return None;
        }
        match self.step() {
            Some(s) => {
                self.remaining -= 1;
                Some(s)
            }
            None => {
                self.remaining = 0;
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(usize::from(self.remaining)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{STALE_NAN_BITS, stale_nan};

    fn bits(s: &[(i64, f64)]) -> Vec<(i64, u64)> {
        s.iter().map(|&(t, v)| (t, v.to_bits())).collect()
    }

    /// Encodes as a head, checks it decodes, seals it (maybe re-encoding) and checks the sealed form.
    fn roundtrip(samples: &[(i64, f64)]) -> usize {
        let mut buf = vec![7u8, 7]; // a fake prefix the head must not touch
        let mut h = HeadState {
            start: 2,
            ..HeadState::default()
        };
        for &(t, v) in samples {
            h.append(&mut buf, t, v);
        }
        let got: Vec<(i64, f64)> = ChunkIter::new(&buf[2..], h.mint(), h.len()).collect();
        assert_eq!(bits(&got), bits(samples), "head");
        h.seal(&mut buf);
        assert_eq!(&buf[..2], &[7, 7]);
        assert_eq!(h.start(), buf.len());
        let chunks: Vec<SealedChunk<'_>> = sealed_chunks(&buf[2..]).collect();
        if samples.is_empty() {
            assert!(chunks.is_empty());
            return 0;
        }
        assert_eq!(chunks.len(), 1);
        let c = chunks[0];
        assert_eq!(bits(&c.iter().collect::<Vec<_>>()), bits(samples), "sealed");
        assert_eq!(
            (c.mint, c.maxt, usize::from(c.count)),
            (samples[0].0, samples[samples.len() - 1].0, samples.len())
        );
        assert_eq!(c.end, buf.len() - 2);
        c.data.len()
    }

    #[test]
    fn bits_roundtrip() {
        let mut buf = Vec::new();
        let mut nbits = 0;
        let items: Vec<(u64, u32)> = (0..300u64)
            .map(|i| (i.wrapping_mul(0x9e37_79b9_7f4a_7c15), (i % 64 + 1) as u32))
            .collect();
        for &(v, n) in &items {
            write_bits(&mut buf, &mut nbits, v, n);
        }
        let mut r = BitReader::new(&buf);
        for &(v, n) in &items {
            let mask = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
            assert_eq!(r.read_bits(n), Some(v & mask));
        }
        assert_eq!(r.read_bits(64), None);
    }

    #[test]
    fn varints_and_zigzag() {
        for v in [0u64, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut b = [0u8; 10];
            let n = put_varint(&mut b, v);
            let mut s = &b[..n];
            assert_eq!(get_varint(&mut s), Some(v));
            assert!(s.is_empty());
        }
        for v in [0i64, -1, 1, i64::MIN, i64::MAX] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
        assert_eq!(get_varint(&mut &[0x80u8, 0x80][..]), None);
    }

    #[test]
    fn regular_counter_is_small() {
        let s: Vec<(i64, f64)> = (0..120)
            .map(|i| (1_700_000_000_000 + i * 15_000, 1000.0 + (i * 7) as f64))
            .collect();
        let n = roundtrip(&s);
        assert!(n < 48, "constant-rate counter: {n} bytes");
    }

    #[test]
    fn noisy_counter_and_gauge() {
        let counter: Vec<(i64, f64)> = (0..120)
            .map(|i| (i * 15_000, (123_456 + i * 300 + (i * 7919) % 97) as f64))
            .collect();
        roundtrip(&counter);
        let gauge: Vec<(i64, f64)> = (0..120)
            .map(|i| (i * 15_000, (i as f64 * 0.37).sin() * 1e3))
            .collect();
        roundtrip(&gauge);
        let mixed: Vec<(i64, f64)> = (0..120)
            .map(|i| {
                (
                    i * 15_000,
                    if i % 3 == 0 { i as f64 } else { i as f64 + 0.5 },
                )
            })
            .collect();
        roundtrip(&mixed);
        let huge: Vec<(i64, f64)> = (0..50)
            .map(|i| {
                (
                    i,
                    if i % 2 == 0 {
                        9.0e15 - i as f64
                    } else {
                        -9.0e15 + i as f64
                    },
                )
            })
            .collect();
        roundtrip(&huge);
    }

    #[test]
    fn special_floats() {
        let s = vec![
            (1, 0.0),
            (2, stale_nan()),
            (3, f64::INFINITY),
            (4, f64::NEG_INFINITY),
            (5, -0.0),
            (6, 0.0),
            (7, f64::MIN_POSITIVE),
            (8, f64::MAX),
            (9, f64::from_bits(1)),
            (10, f64::NAN),
            (11, 1.5),
            (12, 9_007_199_254_740_992.0),
            (13, -9_007_199_254_740_991.0),
            (14, 3.0),
        ];
        roundtrip(&s);
        roundtrip(&s[1..]);
        let mut buf = Vec::new();
        let mut h = HeadState::default();
        h.append(&mut buf, 0, stale_nan());
        h.append(&mut buf, 1, 3.0);
        h.append(&mut buf, 2, stale_nan());
        let got: Vec<u64> = ChunkIter::new(&buf, 0, 3)
            .map(|(_, v)| v.to_bits())
            .collect();
        assert_eq!(got, [STALE_NAN_BITS, 3.0f64.to_bits(), STALE_NAN_BITS]);
    }

    #[test]
    fn irregular_and_huge_deltas() {
        let s = vec![
            (i64::MIN, 1.0),
            (i64::MIN + 1, 2.0),
            (-5, 3.0),
            (0, 4.0),
            (63, 5.0),
            (64, 6.0),
            (191, 6.5),
            (319, 6.6),
            (447, 6.7),
            (448, 6.8),
            (10_000, 7.0),
            (10_001, 7.0),
            (1 << 40, 8.0),
            ((1 << 40) + 17, 9.0),
            (i64::MAX - 1, 10.0),
            (i64::MAX, 11.0),
        ];
        roundtrip(&s);
        let jitter: Vec<(i64, f64)> = (0..300)
            .map(|i| (i * 15_000 + (i * 7919 % 97) - 48 + 1000, (i as f64).sin()))
            .collect();
        roundtrip(&jitter);
        roundtrip(&[]);
        roundtrip(&[(5, 1.0)]);
    }

    #[test]
    fn mode_preference_follows_the_winner() {
        let mut buf = Vec::new();
        let mut h = HeadState::default();
        // Integers first, then fractions: the integer chunk escapes, XOR wins and the next chunk starts XOR.
        for i in 0..20 {
            h.append(&mut buf, i, if i < 2 { 1.0 } else { i as f64 * 0.1 });
        }
        h.seal(&mut buf);
        assert_ne!(h.flags & F_PREFER_XOR, 0);
        h.append(&mut buf, 100, 5.0);
        assert_eq!(h.mode, MODE_XOR);
        h.append(&mut buf, 101, 6.0);
        h.seal(&mut buf);
        assert_eq!(
            h.flags & F_PREFER_XOR,
            0,
            "all-integer XOR chunk re-encodes as integers"
        );
        let all: Vec<(i64, f64)> = sealed_chunks(&buf)
            .flat_map(|c| c.iter().collect::<Vec<_>>())
            .collect();
        assert_eq!(all.len(), 22);
        assert_eq!(all[21], (101, 6.0));
    }

    #[test]
    fn truncated_stream_stops() {
        let mut buf = Vec::new();
        let mut h = HeadState::default();
        for i in 0..50 {
            h.append(&mut buf, i * 1000 + i * i, i as f64 * 1.1);
        }
        let n = ChunkIter::new(&buf[..buf.len() / 2], 0, 50).count();
        assert!(n < 50);
        assert_eq!(ChunkIter::new(&[], 0, 50).count(), 0);
        assert_eq!(sealed_chunks(&[0x80]).count(), 0);
        assert_eq!(
            sealed_chunks(&[0, 0, 1, 200]).count(),
            0,
            "length past the end"
        );
    }
}

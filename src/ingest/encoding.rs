//! `Content-Encoding` handling, so decoders always see the plain body and bombs are cut off early.

use std::borrow::Cow;
use std::io::Read;

use flate2::read::MultiGzDecoder;

use super::{IngestError, IngestErrorKind, Limits};

/// Undoes `Content-Encoding` (`gzip`, `identity`, none) within `limits`.
///
/// The raw body must fit `max_body_bytes`; gzip output is read in bounded steps and refused as
/// soon as it passes `max_decompressed_bytes`, so a gzip bomb never fully inflates. `snappy`
/// passes through untouched: it is remote_write's block framing, undone by `decode_remote_write`.
pub fn decode_body_encoding<'a>(
    body: &'a [u8],
    content_encoding: Option<&str>,
    limits: &Limits,
) -> Result<Cow<'a, [u8]>, IngestError> {
    if body.len() > limits.max_body_bytes {
        return Err(IngestError::whole(
            IngestErrorKind::TooLarge,
            format!(
                "request body is {} bytes, more than the limit of {} bytes",
                body.len(),
                limits.max_body_bytes
            ),
        ));
    }
    let codings: Vec<&str> = content_encoding
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty() && !c.eq_ignore_ascii_case("identity"))
        .collect();
    match codings.as_slice() {
        [] => Ok(Cow::Borrowed(body)),
        [c] if c.eq_ignore_ascii_case("gzip") || c.eq_ignore_ascii_case("x-gzip") => {
            gunzip(body, limits).map(Cow::Owned)
        }
        [c] if c.eq_ignore_ascii_case("snappy") => Ok(Cow::Borrowed(body)),
        _ => Err(IngestError::whole(
            IngestErrorKind::Unsupported,
            format!(
                "unsupported Content-Encoding {:?}, expected gzip or identity",
                content_encoding.unwrap_or("")
            ),
        )),
    }
}

fn gunzip(body: &[u8], limits: &Limits) -> Result<Vec<u8>, IngestError> {
    let max = limits.max_decompressed_bytes;
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(max).min(1 << 20));
    // Read at most one byte past the limit: enough to know it was exceeded, never more.
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    let mut reader = MultiGzDecoder::new(body).take(limit);
    reader.read_to_end(&mut out).map_err(|e| {
        IngestError::whole(
            IngestErrorKind::Decompress,
            format!("invalid gzip body: {e}"),
        )
    })?;
    if out.len() > max {
        return Err(IngestError::whole(
            IngestErrorKind::TooLarge,
            format!("gzip body decompresses to more than the limit of {max} bytes"),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn identity_borrows() {
        let l = Limits::default();
        for ce in [None, Some(""), Some("identity"), Some("IDENTITY")] {
            let out = decode_body_encoding(b"abc", ce, &l).unwrap();
            assert!(matches!(out, Cow::Borrowed(b"abc")));
        }
    }

    #[test]
    fn gzip_round_trip() {
        let l = Limits::default();
        let body = gz(b"up 1\n");
        let out = decode_body_encoding(&body, Some("gzip"), &l).unwrap();
        assert_eq!(&*out, b"up 1\n");
    }

    #[test]
    fn gzip_bomb_is_cut_off() {
        let l = Limits {
            max_decompressed_bytes: 1 << 20,
            ..Limits::default()
        };
        let body = gz(&vec![0u8; 8 << 20]);
        assert!(body.len() < 64 << 10);
        let e = decode_body_encoding(&body, Some("gzip"), &l).unwrap_err();
        assert_eq!(e.kind, IngestErrorKind::TooLarge);
        // Exactly at the limit is fine.
        let body = gz(&vec![0u8; 1 << 20]);
        assert_eq!(
            decode_body_encoding(&body, Some("gzip"), &l).unwrap().len(),
            1 << 20
        );
    }

    #[test]
    fn bad_gzip_and_unknown_encodings() {
        let l = Limits::default();
        let body = gz(b"up 1\nup 2\n");
        let e = decode_body_encoding(&body[..body.len() - 5], Some("gzip"), &l).unwrap_err();
        assert_eq!(e.kind, IngestErrorKind::Decompress);
        let e = decode_body_encoding(b"not gzip", Some("gzip"), &l).unwrap_err();
        assert_eq!(e.kind, IngestErrorKind::Decompress);
        let e = decode_body_encoding(b"x", Some("br"), &l).unwrap_err();
        assert_eq!(e.kind, IngestErrorKind::Unsupported);
        assert_eq!(e.http_status(), 415);
    }

    #[test]
    fn raw_body_limit() {
        let l = Limits {
            max_body_bytes: 4,
            ..Limits::default()
        };
        let e = decode_body_encoding(b"12345", None, &l).unwrap_err();
        assert_eq!(e.kind, IngestErrorKind::TooLarge);
        assert_eq!(e.http_status(), 413);
    }
}

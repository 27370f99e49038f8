//! Request parameters of the Prometheus API: the URL query string merged with an
//! `application/x-www-form-urlencoded` POST body, with repeated keys (`match[]`) kept.

use axum::body::Bytes;
use axum::http::{HeaderMap, header};

/// Decoded `key=value` pairs in request order (query string first, then the form body).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Collects parameters from the raw query string and, for form posts, the body.
    pub fn collect(raw_query: Option<&str>, headers: &HeaderMap, body: &Bytes) -> Params {
        let mut pairs = raw_query.map(parse_form).unwrap_or_default();
        let is_form = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| {
                ct.trim()
                    .to_ascii_lowercase()
                    .starts_with("application/x-www-form-urlencoded")
            });
        if is_form && !body.is_empty() {
            pairs.extend(parse_form(&String::from_utf8_lossy(body)));
        }
        Params(pairs)
    }

    /// The first value of `key`, if given and non-empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`, in order.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// Parses `a=1&b=x+y&c=%2F` with form rules (`+` is a space, `%XX` escapes, invalid escapes kept).
pub fn parse_form(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_form_pairs() {
        let p = parse_form("query=up%7Bjob%3D%22a%22%7D&match[]=x&match%5B%5D=y+z&bad=%zz&e");
        assert_eq!(p[0], ("query".into(), "up{job=\"a\"}".into()));
        assert_eq!(p[1], ("match[]".into(), "x".into()));
        assert_eq!(p[2], ("match[]".into(), "y z".into()));
        assert_eq!(p[3], ("bad".into(), "%zz".into()));
        assert_eq!(p[4], ("e".into(), "".into()));
        assert_eq!(parse_form("a=%4"), vec![("a".into(), "%4".into())]);
    }
}

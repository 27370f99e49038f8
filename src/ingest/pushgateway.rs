//! Pushgateway-compatible grouping labels from the URL path, so existing push clients work as-is.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::series::check_name;
use super::{DecodedSample, IngestError, IngestErrorKind, Limits};
use crate::model::LabelsBuilder;

/// Grouping labels from the path after `/metrics/job/`: `"myjob/instance/host1/foo@base64/YmFy"`.
///
/// The first segment is the `job` value, then label name / value pairs; a `name@base64` label
/// has its value base64url-decoded, padding optional, `=` alone meaning the empty value.
/// Without an `instance` pair, `("instance", "")` is appended, as Pushgateway sets an empty
/// instance; with [`add_labels`] that removes any `instance` label the body carried.
pub fn pushgateway_labels(path_after_job: &str) -> Result<Vec<(String, String)>, IngestError> {
    let mut segs: Vec<&str> = path_after_job.split('/').collect();
    if segs.len() > 1 && segs.last() == Some(&"") {
        segs.pop();
    }
    let mut out = Vec::with_capacity(segs.len() / 2 + 1);
    let job = segs.first().copied().unwrap_or("");
    if job.is_empty() {
        return Err(err("job", "the job name must not be empty"));
    }
    out.push(("job".to_string(), percent_decode(job, "job")?));
    push_pairs(&segs[1..], &mut out)?;
    default_instance(&mut out);
    Ok(out)
}

/// Grouping labels from the path after `/metrics/`: `"job/x/..."` or `"job@base64/eA/..."`.
/// Same rules as [`pushgateway_labels`].
///
/// For servers that route `/metrics/{*rest}` themselves and must accept a base64 job name.
pub fn pushgateway_path_labels(
    path_after_metrics: &str,
) -> Result<Vec<(String, String)>, IngestError> {
    let mut segs: Vec<&str> = path_after_metrics.split('/').collect();
    if segs.len() > 1 && segs.last() == Some(&"") {
        segs.pop();
    }
    match segs.first().copied() {
        Some("job" | "job@base64") => {}
        _ => {
            return Err(err(
                "",
                "path must start with job/<JOB> or job@base64/<JOB>",
            ));
        }
    }
    let mut out = Vec::with_capacity(segs.len() / 2);
    push_pairs(&segs, &mut out)?;
    match out.first() {
        Some((_, v)) if !v.is_empty() => {
            default_instance(&mut out);
            Ok(out)
        }
        _ => Err(err("job", "the job name must not be empty")),
    }
}

fn default_instance(out: &mut Vec<(String, String)>) {
    if !out.iter().any(|(n, _)| n == "instance") {
        out.push(("instance".to_string(), String::new()));
    }
}

fn err(label: &str, msg: impl Into<String>) -> IngestError {
    let path = if label.is_empty() {
        "path".to_string()
    } else {
        format!("path.{label}")
    };
    IngestError::at(IngestErrorKind::Syntax, path, msg)
}

fn push_pairs(segs: &[&str], out: &mut Vec<(String, String)>) -> Result<(), IngestError> {
    let limits = Limits::default();
    let mut it = segs.chunks(2);
    for pair in &mut it {
        let [name, value] = pair else {
            return Err(err(
                pair.first().copied().unwrap_or(""),
                "label name without a value",
            ));
        };
        let (name, b64) = match name.strip_suffix("@base64") {
            Some(n) => (n, true),
            None => (*name, false),
        };
        let name = percent_decode(name, "")?;
        check_name(&name, &limits).map_err(|(_, m)| err(&name, m))?;
        if out.iter().any(|(n, _)| *n == name) {
            return Err(err(&name, "label given twice in the path"));
        }
        let value = if b64 {
            let trimmed = value.trim_end_matches('=');
            let bytes = URL_SAFE_NO_PAD
                .decode(trimmed)
                .map_err(|e| err(&name, format!("invalid base64url value: {e}")))?;
            String::from_utf8(bytes).map_err(|_| err(&name, "base64 value is not UTF-8"))?
        } else {
            if value.is_empty() {
                return Err(err(
                    &name,
                    "empty label value; use NAME@base64/= for an empty value",
                ));
            }
            percent_decode(value, &name)?
        };
        out.push((name, value));
    }
    Ok(())
}

/// Undoes URL percent-encoding (`%2F`), which routers may or may not have done already.
fn percent_decode(s: &str, label: &str) -> Result<String, IngestError> {
    if !s.contains('%') {
        return Ok(s.to_string());
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| err(label, "invalid percent-encoding"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| err(label, "percent-encoded value is not UTF-8"))
}

/// Applies grouping labels to pushed samples: path labels override body labels, and an empty
/// value removes the label (Pushgateway's `instance=""` default when no instance is given).
pub fn add_labels(samples: &mut [DecodedSample], extra: &[(String, String)]) {
    if extra.is_empty() {
        return;
    }
    // Consecutive samples usually share a label set; rebuild once per distinct set.
    let mut last: Option<(crate::model::Labels, crate::model::Labels)> = None;
    for (labels, _, _) in samples.iter_mut() {
        if let Some((from, to)) = &last
            && from == labels
        {
            *labels = to.clone();
            continue;
        }
        let mut b = LabelsBuilder::new(labels);
        for (n, v) in extra {
            b.set(n, v);
        }
        let new = b.build();
        last = Some((std::mem::replace(labels, new.clone()), new));
    }
}

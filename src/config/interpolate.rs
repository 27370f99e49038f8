//! `${VAR}` / `${VAR:-default}` interpolation of configuration values from the environment.
//!
//! Applied to string scalars after YAML parsing (never to keys), so a substituted value can
//! contain any character without changing the document's structure. The environment is a
//! lookup function so tests never mutate the process environment.

use super::delivery::Secret;

/// Looks up an environment variable; `None` when unset.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment, for `klaxon serve` and `klaxon check`.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The result of interpolating one string; `Debug` hides the value, which may hold a secret.
#[derive(Clone, PartialEq, Default)]
pub struct Interpolated {
    /// The text with every reference replaced.
    pub value: String,
    /// True when the text held at least one `${...}` reference or `$$` escape.
    pub changed: bool,
    /// Referenced variables that were unset or empty and left their reference empty (no
    /// non-empty default), in order of appearance; used to explain why a channel is
    /// unconfigured.
    pub missing: Vec<String>,
    /// The values substituted from the environment, so error messages can be scrubbed of them.
    pub substituted: Vec<Secret>,
}

impl std::fmt::Debug for Interpolated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let value = if self.substituted.is_empty() {
            self.value.clone()
        } else {
            redact(&self.value, &self.substituted)
        };
        f.debug_struct("Interpolated")
            .field("value", &value)
            .field("changed", &self.changed)
            .field("missing", &self.missing)
            .field("substituted", &self.substituted)
            .finish()
    }
}

/// A malformed reference. Messages quote only the reference's own text, never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterpolateError {
    /// `${` without a closing `}`.
    #[error("unterminated variable reference `${{` (write `$$` for a literal dollar sign)")]
    Unterminated,
    /// `${1X}`, `${A B}`, `${}`, `${A?x}`.
    #[error(
        "invalid variable reference `${{{0}}}`: expected `${{NAME}}`, `${{NAME:-default}}` or `${{NAME-default}}`"
    )]
    Invalid(String),
}

/// Replaces `${NAME}`, `${NAME:-default}` (default when unset or empty), `${NAME-default}`
/// (default when unset) and `$$` (a literal `$`); any other `$` is kept as is. An unset variable
/// without a default becomes the empty string and is reported in `missing`.
pub fn interpolate(s: &str, env: EnvLookup<'_>) -> Result<Interpolated, InterpolateError> {
    let mut out = Interpolated {
        value: String::with_capacity(s.len()),
        ..Interpolated::default()
    };
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.value.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('$') {
            out.value.push('$');
            out.changed = true;
            rest = r;
        } else if let Some(r) = after.strip_prefix('{') {
            let end = r.find('}').ok_or(InterpolateError::Unterminated)?;
            let inner = &r[..end];
            let (name, default) = split_reference(inner)?;
            let value = env(name);
            let text = match (value, default) {
                (Some(v), Some((true, d))) if v.is_empty() => d.to_string(),
                (Some(v), _) => {
                    if !v.is_empty() {
                        out.substituted.push(Secret(v.clone()));
                    }
                    v
                }
                (None, Some((_, d))) => d.to_string(),
                (None, None) => String::new(),
            };
            if text.is_empty() && !out.missing.iter().any(|m| m == name) {
                out.missing.push(name.to_string());
            }
            out.value.push_str(&text);
            out.changed = true;
            rest = &r[end + 1..];
        } else {
            out.value.push('$');
            rest = after;
        }
    }
    out.value.push_str(rest);
    Ok(out)
}

/// A reference's default: whether it also applies to an empty value (`:-`), and its text.
type Default<'a> = Option<(bool, &'a str)>;

/// Splits `NAME`, `NAME:-default` or `NAME-default`.
fn split_reference(inner: &str) -> Result<(&str, Default<'_>), InterpolateError> {
    let invalid = || InterpolateError::Invalid(inner.to_string());
    let name_len = inner
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '_'))
        .map_or(inner.len(), |(i, _)| i);
    let name = &inner[..name_len];
    if !name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
    {
        return Err(invalid());
    }
    let op = &inner[name_len..];
    if op.is_empty() {
        Ok((name, None))
    } else if let Some(d) = op.strip_prefix(":-") {
        Ok((name, Some((true, d))))
    } else if let Some(d) = op.strip_prefix('-') {
        Ok((name, Some((false, d))))
    } else {
        Err(invalid())
    }
}

/// Replaces every substituted value (three characters or longer) in `msg` with `<redacted>`, so
/// an error raised after interpolation cannot echo a secret.
pub fn redact(msg: &str, values: &[Secret]) -> String {
    let mut vals: Vec<&str> = values
        .iter()
        .map(Secret::expose)
        .filter(|v| v.chars().count() >= 3)
        .collect();
    vals.sort_by_key(|v| std::cmp::Reverse(v.len()));
    let mut out = msg.to_string();
    for v in vals {
        if out.contains(v) {
            out = out.replace(v, "<redacted>");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("smtp.example.com".into()),
            "EMPTY" => Some(String::new()),
            "TOKEN" => Some("s3cr3t-token".into()),
            _ => None,
        }
    }

    fn run(s: &str) -> Interpolated {
        interpolate(s, &env).unwrap()
    }

    #[test]
    fn substitutes_and_defaults() {
        assert_eq!(run("${HOST}").value, "smtp.example.com");
        assert_eq!(run("x-${HOST}:25").value, "x-smtp.example.com:25");
        assert_eq!(run("${PORT:-587}").value, "587");
        assert_eq!(run("${EMPTY:-d}").value, "d");
        assert_eq!(run("${EMPTY-d}").value, "");
        assert_eq!(run("${UNSET-d}").value, "d");
        assert_eq!(run("${HOST:-d}").value, "smtp.example.com");
        assert_eq!(run("plain").value, "plain");
        assert!(!run("plain").changed);
        assert!(run("${HOST}").changed);
    }

    #[test]
    fn missing_variables_become_empty_and_are_recorded() {
        let r = run("Bearer ${UNSET}");
        assert_eq!(r.value, "Bearer ");
        assert_eq!(r.missing, ["UNSET"]);
        let r = run("${A:-x}${EMPTY}${A}");
        assert_eq!(r.value, "x");
        assert_eq!(r.missing, ["EMPTY", "A"]);
        assert!(run("${PORT:-587}").missing.is_empty());
        assert_eq!(run("${PORT:-}").missing, ["PORT"]);
        assert!(run("${HOST}").missing.is_empty());
    }

    #[test]
    fn dollar_escapes_and_literals() {
        assert_eq!(run("$$").value, "$");
        assert_eq!(run("$${HOST}").value, "${HOST}");
        assert_eq!(run("cost: $5").value, "cost: $5");
        assert_eq!(run("{{ $labels.x }}").value, "{{ $labels.x }}");
        assert_eq!(run("end$").value, "end$");
    }

    #[test]
    fn malformed_references() {
        assert_eq!(
            interpolate("${HOST", &env),
            Err(InterpolateError::Unterminated)
        );
        assert!(matches!(
            interpolate("${1X}", &env),
            Err(InterpolateError::Invalid(_))
        ));
        assert!(matches!(
            interpolate("${}", &env),
            Err(InterpolateError::Invalid(_))
        ));
        assert!(matches!(
            interpolate("${A?x}", &env),
            Err(InterpolateError::Invalid(_))
        ));
    }

    #[test]
    fn redaction_hides_substituted_values() {
        let r = run("Bearer ${TOKEN}");
        let msg = format!("invalid header value {:?}", r.value);
        let clean = redact(&msg, &r.substituted);
        assert!(!clean.contains("s3cr3t"), "{clean}");
        assert!(clean.contains("<redacted>"));
        assert!(!format!("{r:?}").contains("s3cr3t"));
    }
}

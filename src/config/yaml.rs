//! The configuration file as a spanned YAML tree: parsed once, interpolated (`${VAR}`), then
//! deserialized into `Config` by a serde `Deserializer` over the tree.
//!
//! Working on a tree rather than on text means a substituted value can never change the
//! document's structure, YAML syntax errors are reported against the file as written (no
//! secrets in them), and every error is placed at a YAML path (`route.routes[1].group_wait`) and
//! line:column. Scalars convert leniently the way Alertmanager's YAML library does
//! (`match: {test: 2}` is the string "2"), and a plain scalar that came from the environment is
//! re-typed after substitution, so `smtp_port: ${SMTP_PORT:-587}` is the number 587.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, IntoDeserializer, MapAccess, SeqAccess,
    Unexpected, VariantAccess, Visitor,
};
use serde_saphyr::Spanned;

use super::delivery::Secret;
use super::interpolate::{EnvLookup, interpolate};
use crate::yaml::RawValue;

/// A YAML value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum YValue {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<YNode>),
    Map(Vec<(YNode, YNode)>),
}

/// A YAML node with its place in the file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct YNode {
    pub value: YValue,
    /// 1-based line (0 when unknown).
    pub line: usize,
    /// 1-based column (0 when unknown).
    pub column: usize,
    /// YAML path: `route.routes[1].match_re.service`; empty for the root.
    pub path: String,
    /// A scalar's text as written (numbers, booleans), for string conversion.
    raw: Option<String>,
    /// An unquoted, non-block scalar (re-typed after interpolation).
    plain: bool,
    /// Its text came (partly) from the environment.
    from_env: bool,
}

/// What interpolating the tree found.
#[derive(Debug, Default)]
pub(crate) struct InterpolationReport {
    /// Variables that were unset or empty, by YAML path of the value referencing them.
    pub missing: BTreeMap<String, Vec<String>>,
    /// Values substituted from the environment (for scrubbing error messages).
    pub substituted: Vec<Secret>,
}

/// A YAML, interpolation or type error, placed when possible.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DeError {
    /// What went wrong (never a substituted value, see `interpolate::redact`).
    pub message: String,
    /// YAML path, line, column.
    pub at: Option<(String, usize, usize)>,
}

impl DeError {
    fn locate(mut self, n: &YNode) -> Self {
        if self.at.is_none() {
            self.at = Some((n.path.clone(), n.line, n.column));
        }
        self
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            message: msg.to_string(),
            at: None,
        }
    }
}

/// Joins a YAML path and a map key.
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Parses one YAML document into a tree; `Ok(None)` for a document without content.
pub(crate) fn parse(src: &str) -> Result<Option<YNode>, DeError> {
    let mut opts = serde_saphyr::options::Options::default();
    opts.with_snippet = false;
    let docs: Result<Vec<Spanned<RawValue>>, _> =
        serde_saphyr::from_str_multiple_with_options(src, opts);
    match docs {
        Ok(mut d) => {
            if d.len() > 1 {
                let n = convert(d.swap_remove(1), src, String::new());
                return Err(DeError {
                    message: "the file must hold a single YAML document".into(),
                    at: Some((String::new(), n.line, n.column)),
                });
            }
            Ok(d.pop().map(|n| convert(n, src, String::new())))
        }
        Err(e) => {
            let (line, column) = e
                .location()
                .map(|l| {
                    (
                        usize::try_from(l.line()).unwrap_or(0),
                        usize::try_from(l.column()).unwrap_or(0),
                    )
                })
                .unwrap_or((0, 0));
            let full = e.without_snippet().to_string();
            let flat = full.split_whitespace().collect::<Vec<_>>().join(" ");
            let suffix = format!(" at line {line}, column {column}");
            let message = match flat.find(&suffix) {
                Some(i) if line > 0 => format!("{}{}", &flat[..i], &flat[i + suffix.len()..]),
                _ => flat,
            };
            Err(DeError {
                message: format!("YAML syntax: {message}"),
                at: (line > 0).then(|| (String::new(), line, column)),
            })
        }
    }
}

impl YNode {
    /// Replaces `${VAR}` references in every string value (keys stay as written).
    pub(crate) fn interpolate(
        &mut self,
        env: EnvLookup<'_>,
        report: &mut InterpolationReport,
    ) -> Result<(), DeError> {
        match &mut self.value {
            YValue::Str(s) if s.contains('$') => {
                let r = interpolate(s, env).map_err(|e| DeError {
                    message: e.to_string(),
                    at: Some((self.path.clone(), self.line, self.column)),
                })?;
                if !r.missing.is_empty() {
                    report
                        .missing
                        .entry(self.path.clone())
                        .or_default()
                        .extend(r.missing);
                }
                report.substituted.extend(r.substituted);
                self.from_env = r.changed;
                *s = r.value;
            }
            YValue::Seq(items) => {
                for n in items {
                    n.interpolate(env, report)?;
                }
            }
            YValue::Map(entries) => {
                for (_, v) in entries {
                    v.interpolate(env, report)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Where each path starts (a map entry's key, a list item), for placing validation errors.
    pub(crate) fn positions(&self, out: &mut BTreeMap<String, (usize, usize)>) {
        out.entry(self.path.clone())
            .or_insert((self.line, self.column));
        match &self.value {
            YValue::Seq(items) => items.iter().for_each(|n| n.positions(out)),
            YValue::Map(entries) => {
                for (k, v) in entries {
                    out.entry(k.path.clone()).or_insert((k.line, k.column));
                    v.positions(out);
                }
            }
            _ => {}
        }
    }

    /// A short description of the node's kind, for messages.
    pub(crate) fn kind(&self) -> &'static str {
        match self.value {
            YValue::Null => "null",
            YValue::Bool(_) => "a boolean",
            YValue::Int(_) => "an integer",
            YValue::Float(_) => "a number",
            YValue::Str(_) => "a string",
            YValue::Seq(_) => "a list",
            YValue::Map(_) => "a mapping",
        }
    }

    /// The value as the YAML core schema types it: plain scalars that came from the
    /// environment are re-typed (`587` a number, `true` a boolean, empty null).
    fn typed(&self) -> Cow<'_, YValue> {
        match &self.value {
            YValue::Str(s) if self.plain && self.from_env => Cow::Owned(core_schema(s)),
            v => Cow::Borrowed(v),
        }
    }

    /// Any scalar as text (null is the empty string).
    fn text(&self) -> Option<Cow<'_, str>> {
        match &self.value {
            YValue::Str(s) => Some(Cow::Borrowed(s)),
            YValue::Null => Some(Cow::Borrowed("")),
            YValue::Bool(b) => Some(self.raw_or(b)),
            YValue::Int(i) => Some(self.raw_or(i)),
            YValue::Float(f) => Some(self.raw_or(f)),
            YValue::Seq(_) | YValue::Map(_) => None,
        }
    }

    fn raw_or(&self, v: &dyn fmt::Display) -> Cow<'_, str> {
        match &self.raw {
            Some(r) => Cow::Borrowed(r),
            None => Cow::Owned(v.to_string()),
        }
    }

    fn unexpected(&self) -> Unexpected<'_> {
        match &self.value {
            YValue::Null => Unexpected::Unit,
            YValue::Bool(b) => Unexpected::Bool(*b),
            YValue::Int(i) => match i64::try_from(*i) {
                Ok(v) => Unexpected::Signed(v),
                Err(_) => Unexpected::Other("a large integer"),
            },
            YValue::Float(f) => Unexpected::Float(*f),
            // Never echo a string: it may be a secret.
            YValue::Str(_) => Unexpected::Other("a string"),
            YValue::Seq(_) => Unexpected::Seq,
            YValue::Map(_) => Unexpected::Map,
        }
    }

    fn invalid<V: de::Expected>(&self, exp: &V) -> DeError {
        de::Error::invalid_type(self.unexpected(), exp)
    }

    fn int(&self) -> Option<i128> {
        match self.typed().as_ref() {
            YValue::Int(i) => Some(*i),
            YValue::Str(s) => s.trim().parse().ok(),
            YValue::Float(f) if f.fract() == 0.0 && f.abs() < 1e18 => Some(*f as i128),
            _ => None,
        }
    }
}

/// YAML 1.2 core schema resolution of a plain scalar that came from the environment, limited
/// to values whose text survives the round trip (`0123` and `1.50` stay strings), so a secret
/// that happens to look like a number is never altered.
fn core_schema(s: &str) -> YValue {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return YValue::Null,
        "true" | "True" | "TRUE" => return YValue::Bool(true),
        "false" | "False" | "FALSE" => return YValue::Bool(false),
        _ => {}
    }
    if let Ok(i) = s.parse::<i128>()
        && i.to_string() == s
    {
        return YValue::Int(i);
    }
    if s.bytes()
        .next()
        .is_some_and(|b| b.is_ascii_digit() || b == b'-')
        && let Ok(f) = s.parse::<f64>()
        && f.is_finite()
        && f.to_string() == s
    {
        return YValue::Float(f);
    }
    YValue::Str(s.to_string())
}

// ---------------------------------------------------------------------------------------------
// Building the tree from serde-saphyr's spanned values.

fn convert(s: Spanned<RawValue>, src: &str, path: String) -> YNode {
    let loc = &s.referenced;
    let line = usize::try_from(loc.line()).unwrap_or(0);
    let column = usize::try_from(loc.column()).unwrap_or(0);
    let span = s.defined.span();
    let raw_text = span.byte_offset().and_then(|b| {
        let b = usize::try_from(b).ok()?;
        let len = usize::try_from(span.byte_len()?).ok()?;
        src.get(b..b.checked_add(len)?)
    });
    let plain = raw_text.is_some_and(|t| {
        !t.starts_with(['"', '\'', '|', '>']) && !t.trim_start().starts_with(['"', '\''])
    });
    let raw = raw_text
        .filter(|_| plain)
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty());
    let value = match s.value {
        RawValue::Null => YValue::Null,
        RawValue::Bool(b) => YValue::Bool(b),
        RawValue::Int(i) => YValue::Int(i),
        RawValue::Float(f) => YValue::Float(f),
        RawValue::Str(s) => YValue::Str(s),
        RawValue::Seq(items) => YValue::Seq(
            items
                .into_iter()
                .enumerate()
                .map(|(i, x)| convert(x, src, format!("{path}[{i}]")))
                .collect(),
        ),
        RawValue::Map(entries) => YValue::Map(
            entries
                .into_iter()
                .map(|(k, v)| {
                    let key_text = match &k.value {
                        RawValue::Str(s) => s.clone(),
                        RawValue::Int(i) => i.to_string(),
                        RawValue::Bool(b) => b.to_string(),
                        RawValue::Float(f) => f.to_string(),
                        RawValue::Null => "null".into(),
                        _ => "<complex key>".into(),
                    };
                    let child = join(&path, &key_text);
                    (convert(k, src, child.clone()), convert(v, src, child))
                })
                .collect(),
        ),
    };
    YNode {
        value,
        line,
        column,
        path,
        raw,
        plain,
        from_env: false,
    }
}

// ---------------------------------------------------------------------------------------------
// serde over the tree.

/// Deserializes `T` from the tree, placing every error.
pub(crate) fn from_node<T: de::DeserializeOwned>(node: &YNode) -> Result<T, DeError> {
    T::deserialize(node).map_err(|e| e.locate(node))
}

struct SeqAcc<'a> {
    items: std::slice::Iter<'a, YNode>,
}

impl<'de> SeqAccess<'de> for SeqAcc<'_> {
    type Error = DeError;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        match self.items.next() {
            Some(n) => seed.deserialize(n).map(Some).map_err(|e| e.locate(n)),
            None => Ok(None),
        }
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct MapAcc<'a> {
    entries: std::slice::Iter<'a, (YNode, YNode)>,
    value: Option<&'a YNode>,
}

impl<'de> MapAccess<'de> for MapAcc<'_> {
    type Error = DeError;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        match self.entries.next() {
            Some((k, v)) => {
                self.value = Some(v);
                seed.deserialize(k).map(Some).map_err(|e| e.locate(k))
            }
            None => Ok(None),
        }
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let v = self
            .value
            .take()
            .ok_or_else(|| <DeError as de::Error>::custom("value without key"))?;
        seed.deserialize(v).map_err(|e| e.locate(v))
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

fn empty_seq() -> SeqAcc<'static> {
    SeqAcc { items: [].iter() }
}

fn empty_map() -> MapAcc<'static> {
    MapAcc {
        entries: [].iter(),
        value: None,
    }
}

macro_rules! int_method {
    ($method:ident) => {
        fn $method<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
            let r = match self.int() {
                Some(i) => match (i64::try_from(i), u64::try_from(i)) {
                    (Ok(x), _) => v.visit_i64(x),
                    (_, Ok(x)) => v.visit_u64(x),
                    _ => v.visit_i128(i),
                },
                None => Err(self.invalid(&v)),
            };
            r.map_err(|e| e.locate(self))
        }
    };
}

impl<'de> Deserializer<'de> for &YNode {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let r = match self.typed().as_ref() {
            YValue::Null => v.visit_unit(),
            YValue::Bool(b) => v.visit_bool(*b),
            YValue::Int(i) => match (i64::try_from(*i), u64::try_from(*i)) {
                (Ok(x), _) => v.visit_i64(x),
                (_, Ok(x)) => v.visit_u64(x),
                _ => v.visit_i128(*i),
            },
            YValue::Float(f) => v.visit_f64(*f),
            YValue::Str(s) => v.visit_str(s),
            YValue::Seq(items) => v.visit_seq(SeqAcc {
                items: items.iter(),
            }),
            YValue::Map(entries) => v.visit_map(MapAcc {
                entries: entries.iter(),
                value: None,
            }),
        };
        r.map_err(|e| e.locate(self))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let b = match self.typed().as_ref() {
            YValue::Bool(b) => Some(*b),
            YValue::Str(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" => Some(true),
                "false" => Some(false),
                _ => None,
            },
            _ => None,
        };
        match b {
            Some(b) => v.visit_bool(b),
            None => Err(self.invalid(&v)),
        }
        .map_err(|e| e.locate(self))
    }

    int_method!(deserialize_i8);
    int_method!(deserialize_i16);
    int_method!(deserialize_i32);
    int_method!(deserialize_i64);
    int_method!(deserialize_i128);
    int_method!(deserialize_u8);
    int_method!(deserialize_u16);
    int_method!(deserialize_u32);
    int_method!(deserialize_u64);
    int_method!(deserialize_u128);

    fn deserialize_f32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_f64(v)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let f = match self.typed().as_ref() {
            YValue::Int(i) => Some(*i as f64),
            YValue::Float(f) => Some(*f),
            YValue::Str(s) => s.trim().parse().ok(),
            _ => None,
        };
        match f {
            Some(f) => v.visit_f64(f),
            None => Err(self.invalid(&v)),
        }
        .map_err(|e| e.locate(self))
    }

    fn deserialize_char<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match self.text() {
            Some(t) => v.visit_str(&t),
            None => Err(self.invalid(&v)),
        }
        .map_err(|e| e.locate(self))
    }

    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match self.typed().as_ref() {
            YValue::Null => v.visit_none(),
            YValue::Str(s) if s.is_empty() && self.from_env => v.visit_none(),
            _ => v.visit_some(self),
        }
        .map_err(|e| e.locate(self))
    }

    fn deserialize_unit<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match self.typed().as_ref() {
            YValue::Null => v.visit_unit(),
            _ => Err(self.invalid(&v)),
        }
        .map_err(|e| e.locate(self))
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_unit(v)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, DeError> {
        v.visit_newtype_struct(self).map_err(|e| e.locate(self))
    }

    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match &self.value {
            YValue::Seq(items) => v.visit_seq(SeqAcc {
                items: items.iter(),
            }),
            YValue::Null => v.visit_seq(empty_seq()),
            _ => Err(self.invalid(&v)),
        }
        .map_err(|e| e.locate(self))
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, v: V) -> Result<V::Value, DeError> {
        self.deserialize_seq(v)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        v: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(v)
    }

    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match &self.value {
            YValue::Map(entries) => v.visit_map(MapAcc {
                entries: entries.iter(),
                value: None,
            }),
            YValue::Null => v.visit_map(empty_map()),
            _ => Err(self.invalid(&v)),
        }
        .map_err(|e| e.locate(self))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_map(v)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        match &self.value {
            YValue::Map(entries) if entries.len() == 1 => v.visit_enum(NodeEnum {
                key: &entries[0].0,
                value: &entries[0].1,
            }),
            _ => match self.text() {
                Some(t) => {
                    let d: de::value::StrDeserializer<'_, DeError> = t.as_ref().into_deserializer();
                    v.visit_enum(d)
                }
                None => Err(self.invalid(&v)),
            },
        }
        .map_err(|e| e.locate(self))
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_unit()
    }
}

struct NodeEnum<'a> {
    key: &'a YNode,
    value: &'a YNode,
}

impl<'de, 'a> EnumAccess<'de> for NodeEnum<'a> {
    type Error = DeError;
    type Variant = &'a YNode;
    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Self::Variant), DeError> {
        let k = seed.deserialize(self.key).map_err(|e| e.locate(self.key))?;
        Ok((k, self.value))
    }
}

impl<'de> VariantAccess<'de> for &YNode {
    type Error = DeError;
    fn unit_variant(self) -> Result<(), DeError> {
        match self.value {
            YValue::Null => Ok(()),
            _ => Err(self.invalid(&"a variant without a value")),
        }
    }
    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, DeError> {
        seed.deserialize(self)
    }
    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, v: V) -> Result<V::Value, DeError> {
        self.deserialize_seq(v)
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_map(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct T {
        #[serde(default)]
        port: Option<u16>,
        #[serde(default)]
        name: String,
        #[serde(default)]
        on: bool,
        #[serde(default)]
        m: BTreeMap<String, String>,
    }

    fn env(n: &str) -> Option<String> {
        match n {
            "PORT" => Some("2525".into()),
            "WEIRD" => Some("a: b # c\n- d".into()),
            _ => None,
        }
    }

    fn load(src: &str) -> Result<T, DeError> {
        let mut n = parse(src)?.unwrap();
        n.interpolate(&env, &mut InterpolationReport::default())?;
        from_node(&n)
    }

    #[test]
    fn plain_env_scalars_are_retyped() {
        assert_eq!(load("port: ${PORT}\n").unwrap().port, Some(2525));
        assert_eq!(load("port: ${NOPE:-587}\n").unwrap().port, Some(587));
        assert_eq!(load("port: ${NOPE}\n").unwrap().port, None);
        assert_eq!(load("port: \"${PORT}\"\n").unwrap().port, Some(2525));
        assert_eq!(load("name: ${PORT}\n").unwrap().name, "2525");
        assert!(load("on: ${NOPE:-true}\n").unwrap().on);
        assert_eq!(core_schema("0123"), YValue::Str("0123".into()));
        assert_eq!(core_schema("1.50"), YValue::Str("1.50".into()));
        assert_eq!(core_schema("1.5"), YValue::Float(1.5));
        assert_eq!(core_schema("-7"), YValue::Int(-7));
        assert_eq!(core_schema("+7"), YValue::Str("+7".into()));
    }

    #[test]
    fn substituted_values_cannot_change_structure() {
        let t = load("name: ${WEIRD}\n").unwrap();
        assert_eq!(t.name, "a: b # c\n- d");
    }

    #[test]
    fn scalars_convert_leniently_to_strings() {
        let t = load("m: {test: 2, b: true, f: 1.50}\n").unwrap();
        assert_eq!(t.m["test"], "2");
        assert_eq!(t.m["b"], "true");
        assert_eq!(t.m["f"], "1.50");
    }

    #[test]
    fn errors_are_placed() {
        let e = load("name: x\nbogus: 1\n").unwrap_err();
        assert_eq!(e.at, Some(("bogus".into(), 2, 1)));
        assert!(e.message.contains("unknown field `bogus`"), "{e:?}");
        let e = load("port: [1]\n").unwrap_err();
        assert_eq!(e.at.as_ref().unwrap().0, "port");
        let e = load("port: 99999\n").unwrap_err();
        assert_eq!(e.at.as_ref().unwrap().1, 1);
        let e = load("name: ${BROKEN\n").unwrap_err();
        assert!(e.message.contains("unterminated"), "{e:?}");
        let e = parse("a: [\n").unwrap_err();
        assert!(e.message.starts_with("YAML syntax"), "{e:?}");
    }

    #[test]
    fn type_errors_do_not_echo_strings() {
        let e = load("port: hunter2-secret\n").unwrap_err();
        assert!(!e.message.contains("hunter2"), "{e:?}");
    }
}

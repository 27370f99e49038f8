//! Template values: the dynamic data a template walks, printed the way Go's `fmt` prints them.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::exec::FuncError;
use super::gofmt;

/// A dynamically typed template value (Go's `reflect.Value`, restricted to what templates see).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Go's invalid value: a missing map key; prints `<no value>`.
    Missing,
    /// Go's `nil`; prints `<nil>`.
    Nil,
    /// A `bool`.
    Bool(bool),
    /// An `int`.
    Int(i64),
    /// A `float64`.
    Float(f64),
    /// A `string`.
    Str(Arc<str>),
    /// A slice (`[]interface{}`).
    List(Arc<Vec<Value>>),
    /// A `map[string]...`; a missing key yields [`Value::Missing`].
    Map(Arc<BTreeMap<String, Value>>),
    /// A Go struct (type name, fields in declaration order); a missing field is an error.
    Struct(Arc<Struct>),
    /// A value of a named Go type with methods (Alertmanager's `KV.SortedPairs`,
    /// `Alerts.Firing`, `time.Time.Format`): behaves as its inner value, except that field
    /// access tries the methods first and printing uses its `String` method when it has one.
    Object(Arc<Object>),
}

/// The methods of a named Go type, for [`Value::Object`].
pub trait Methods: Send + Sync + std::fmt::Debug {
    /// Whether the type has a method `name`.
    fn has(&self, name: &str) -> bool;

    /// Calls method `name` (one [`Methods::has`] confirmed) on `recv`, the object's inner
    /// value, with evaluated `args`.
    fn call(&self, recv: &Value, name: &str, args: &[Value]) -> Result<Value, FuncError>;

    /// Go's `String()` of the value, when the type implements `fmt.Stringer`.
    fn go_string(&self, _recv: &Value) -> Option<String> {
        None
    }

    /// What a missing key yields when the inner value is a map (Go's `missingkey` option:
    /// [`Value::Missing`] by default, `""` for `missingkey=zero` on `map[string]string`).
    fn missing_key(&self) -> Value {
        Value::Missing
    }
}

/// A value with methods: its Go type name, the underlying value and the method set.
#[derive(Debug, Clone)]
pub struct Object {
    /// Go type name for errors and `%T` (e.g. `template.KV`).
    pub type_name: String,
    /// The underlying map, list, string...
    pub inner: Value,
    /// The type's methods.
    pub methods: Arc<dyn Methods>,
}

impl PartialEq for Object {
    fn eq(&self, other: &Self) -> bool {
        self.type_name == other.type_name && self.inner == other.inner
    }
}

/// A Go struct value: its type name (as Go prints it in errors) and its fields in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Struct {
    /// Go type name, e.g. `template.tmplData` or `*template.sample` (a leading `*` prints `&{...}`).
    pub type_name: String,
    /// Field names and values in declaration order.
    pub fields: Vec<(String, Value)>,
}

impl Value {
    /// A string value.
    pub fn str(s: impl Into<Arc<str>>) -> Self {
        Value::Str(s.into())
    }

    /// A string-to-string map (Go's `map[string]string`), e.g. a label set.
    pub fn string_map(m: &BTreeMap<String, String>) -> Self {
        Value::Map(Arc::new(
            m.iter()
                .map(|(k, v)| (k.clone(), Value::str(v.as_str())))
                .collect(),
        ))
    }

    /// A struct value.
    pub fn new_struct(type_name: &str, fields: Vec<(&str, Value)>) -> Self {
        Value::Struct(Arc::new(Struct {
            type_name: type_name.to_string(),
            fields: fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        }))
    }

    /// An object of Go type `type_name` over `inner` with `methods`.
    pub fn object(type_name: &str, inner: Value, methods: Arc<dyn Methods>) -> Self {
        Value::Object(Arc::new(Object {
            type_name: type_name.to_string(),
            inner,
            methods,
        }))
    }

    /// The value without its methods (an object's inner value; anything else as is).
    pub fn plain(&self) -> &Value {
        match self {
            Value::Object(o) => o.inner.plain(),
            v => v,
        }
    }

    /// The value as Go's `fmt` would see it: an object with a `String` method becomes that
    /// string, any other object its inner value.
    pub fn printable(&self) -> Value {
        match self {
            Value::Object(o) => match o.methods.go_string(&o.inner) {
                Some(s) => Value::str(s),
                None => o.inner.printable(),
            },
            v => v.clone(),
        }
    }

    /// Go's type name for error messages (`%T`).
    pub fn type_name(&self) -> String {
        match self {
            Value::Object(o) => o.type_name.clone(),
            Value::Missing | Value::Nil => "<nil>".into(),
            Value::Bool(_) => "bool".into(),
            Value::Int(_) => "int".into(),
            Value::Float(_) => "float64".into(),
            Value::Str(_) => "string".into(),
            Value::List(_) => "[]interface {}".into(),
            Value::Map(m) => {
                if m.values().all(|v| matches!(v, Value::Str(_))) {
                    "map[string]string".into()
                } else {
                    "map[string]interface {}".into()
                }
            }
            Value::Struct(s) => s.type_name.clone(),
        }
    }

    /// Go's truthiness (`if`, `with`, `and`, `or`, `not`).
    pub fn truthy(&self) -> bool {
        match self {
            Value::Missing | Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::Struct(_) => true,
            Value::Object(o) => o.inner.truthy(),
        }
    }

    /// Appends Go's `%v` rendering (`fmt.Sprint`) of the value to `out`.
    pub fn write_go(&self, out: &mut String) {
        match self {
            Value::Missing => out.push_str("<no value>"),
            Value::Nil => out.push_str("<nil>"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => out.push_str(&i.to_string()),
            Value::Float(f) => out.push_str(&gofmt::format_g(*f, None)),
            Value::Str(s) => out.push_str(s),
            Value::List(l) => {
                out.push('[');
                for (i, v) in l.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    v.write_go(out);
                }
                out.push(']');
            }
            Value::Map(m) => {
                out.push_str("map[");
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    out.push_str(k);
                    out.push(':');
                    v.write_go(out);
                }
                out.push(']');
            }
            Value::Struct(s) => {
                if s.type_name.starts_with('*') {
                    out.push('&');
                }
                out.push('{');
                for (i, (_, v)) in s.fields.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    v.write_go(out);
                }
                out.push('}');
            }
            Value::Object(o) => match o.methods.go_string(&o.inner) {
                Some(s) => out.push_str(&s),
                None => o.inner.write_go(out),
            },
        }
    }

    /// Go's `fmt.Sprint` of a single value.
    pub fn to_go_string(&self) -> String {
        let mut s = String::new();
        self.write_go(&mut s);
        s
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::str(s)
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Self {
        Value::Float(f)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

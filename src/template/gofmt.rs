//! Go `fmt` compatibility: `%v` float formatting, `Sprint`, `Sprintln`, `Sprintf` and `strconv.Quote`.

use super::value::Value;

/// Largest width/precision Go's `fmt` accepts (larger renders `%!(BADWIDTH)` / `%!(BADPREC)`).
const MAX_WIDTH: usize = 1_000_000;

/// Splits a finite, non-negative float into its decimal digits (no trailing zeros) and the
/// decimal point position, rounding to `sig` significant digits (shortest round-trip if None).
fn digits(f: f64, sig: Option<usize>) -> (String, i32) {
    let s = match sig {
        Some(p) => format!("{:.*e}", p.max(1) - 1, f),
        None => format!("{f:e}"),
    };
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut d: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    while d.len() > 1 && d.ends_with('0') {
        d.pop();
    }
    if d == "0" {
        return (d, 1);
    }
    (d, exp + 1)
}

fn special(f: f64) -> Option<String> {
    if f.is_nan() {
        Some("NaN".into())
    } else if f == f64::INFINITY {
        Some("+Inf".into())
    } else if f == f64::NEG_INFINITY {
        Some("-Inf".into())
    } else {
        None
    }
}

fn exp_suffix(out: &mut String, e: i32, upper: bool) {
    out.push(if upper { 'E' } else { 'e' });
    out.push(if e < 0 { '-' } else { '+' });
    let a = e.unsigned_abs();
    if a < 10 {
        out.push('0');
    }
    out.push_str(&a.to_string());
}

/// Go's `%g` (`strconv.FormatFloat(f, 'g', prec, 64)`); `None` is the shortest form used by `%v`.
pub fn format_g(f: f64, prec: Option<usize>) -> String {
    format_g_case(f, prec, false)
}

fn format_g_case(f: f64, prec: Option<usize>, upper: bool) -> String {
    if let Some(s) = special(f) {
        return s;
    }
    let neg = f.is_sign_negative();
    let (d, dp) = digits(f.abs(), prec.map(|p| p.max(1)));
    let nd = d.len() as i32;
    let eprec = match prec {
        None => 6,
        Some(p) => {
            let p = p.max(1) as i32;
            if p > nd && nd >= dp { nd } else { p }
        }
    };
    let exp = dp - 1;
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if d == "0" {
        out.push('0');
        return out;
    }
    if exp < -4 || exp >= eprec {
        out.push_str(&d[..1]);
        if d.len() > 1 {
            out.push('.');
            out.push_str(&d[1..]);
        }
        exp_suffix(&mut out, exp, upper);
        return out;
    }
    push_fixed(&mut out, &d, dp);
    out
}

/// Writes digits `d` with the decimal point after `dp` digits (plain notation, no padding zeros).
fn push_fixed(out: &mut String, d: &str, dp: i32) {
    if dp <= 0 {
        out.push_str("0.");
        for _ in 0..(-dp) {
            out.push('0');
        }
        out.push_str(d);
    } else if dp as usize >= d.len() {
        out.push_str(d);
        for _ in 0..(dp as usize - d.len()) {
            out.push('0');
        }
    } else {
        out.push_str(&d[..dp as usize]);
        out.push('.');
        out.push_str(&d[dp as usize..]);
    }
}

/// Go's `%e` with the given precision.
fn format_e(f: f64, prec: usize, upper: bool) -> String {
    if let Some(s) = special(f) {
        return s;
    }
    let s = format!("{:.*e}", prec, f);
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let mut out = mant.to_string();
    exp_suffix(&mut out, exp.parse().unwrap_or(0), upper);
    out
}

/// Go's `fmt.Sprint`: spaces between operands when neither side is a string.
pub fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !matches!(a, Value::Str(_)) && !matches!(args[i - 1], Value::Str(_)) {
            out.push(' ');
        }
        a.write_go(&mut out);
    }
    out
}

/// Go's `fmt.Sprintln`: always spaces between operands, then a newline.
pub fn sprintln(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        a.write_go(&mut out);
    }
    out.push('\n');
    out
}

pub use crate::model::quote;

#[derive(Default, Clone, Copy)]
struct Spec {
    minus: bool,
    plus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

fn bad_verb(out: &mut String, verb: char, arg: &Value) {
    out.push_str("%!");
    out.push(verb);
    out.push('(');
    match arg {
        Value::Nil | Value::Missing => out.push_str("<nil>"),
        a => {
            out.push_str(&a.type_name());
            out.push('=');
            a.write_go(out);
        }
    }
    out.push(')');
}

fn pad(out: &mut String, body: &str, spec: &Spec, numeric: bool) {
    let len = body.chars().count();
    let w = spec.width.unwrap_or(0);
    if len >= w {
        out.push_str(body);
        return;
    }
    let fill = w - len;
    if spec.minus {
        out.push_str(body);
        out.extend(std::iter::repeat_n(' ', fill));
    } else if spec.zero && numeric {
        let (sign, rest) = match body.chars().next() {
            Some(c @ ('+' | '-' | ' ')) => (Some(c), &body[1..]),
            _ => (None, body),
        };
        if let Some(c) = sign {
            out.push(c);
        }
        out.extend(std::iter::repeat_n('0', fill));
        out.push_str(rest);
    } else {
        out.extend(std::iter::repeat_n(' ', fill));
        out.push_str(body);
    }
}

fn sign_prefix(neg: bool, spec: &Spec) -> &'static str {
    if neg {
        "-"
    } else if spec.plus {
        "+"
    } else if spec.space {
        " "
    } else {
        ""
    }
}

fn fmt_int(out: &mut String, i: i64, verb: char, spec: &Spec) {
    let neg = i < 0;
    let a = i.unsigned_abs();
    let digits = match verb {
        'd' | 'v' => a.to_string(),
        'b' => format!("{a:b}"),
        'o' | 'O' => format!("{a:o}"),
        'x' => format!("{a:x}"),
        'X' => format!("{a:X}"),
        _ => a.to_string(),
    };
    let digits = match spec.prec {
        Some(p) if digits.len() < p => format!("{}{digits}", "0".repeat(p - digits.len())),
        _ => digits,
    };
    let prefix = match (verb, spec.sharp) {
        ('b', true) => "0b",
        ('o', true) => "0",
        ('O', _) => "0o",
        ('x', true) => "0x",
        ('X', true) => "0X",
        _ => "",
    };
    let body = format!("{}{prefix}{digits}", sign_prefix(neg, spec));
    pad(out, &body, spec, spec.prec.is_none());
}

fn fmt_float(out: &mut String, f: f64, verb: char, spec: &Spec) {
    let body = if f.is_nan() {
        if spec.plus {
            "+NaN".to_string()
        } else if spec.space {
            " NaN".to_string()
        } else {
            "NaN".to_string()
        }
    } else if f.is_infinite() {
        if f > 0.0 {
            if spec.plus || !spec.space {
                "+Inf"
            } else {
                " Inf"
            }
            .to_string()
        } else {
            "-Inf".to_string()
        }
    } else {
        let neg = f.is_sign_negative() && f != 0.0 || (f == 0.0 && f.is_sign_negative());
        let a = f.abs();
        let mag = match verb {
            'f' | 'F' => format!("{:.*}", spec.prec.unwrap_or(6), a),
            'e' | 'E' => format_e(a, spec.prec.unwrap_or(6), verb == 'E'),
            _ => format_g_case(a, spec.prec, verb == 'G'),
        };
        format!("{}{mag}", sign_prefix(neg, spec))
    };
    let numeric = f.is_finite();
    let mut s = *spec;
    if !numeric {
        s.zero = false;
    }
    pad(out, &body, &s, numeric);
}

fn fmt_str(out: &mut String, s: &str, verb: char, spec: &Spec) {
    match verb {
        'q' => pad(out, &quote(s), spec, false),
        'x' | 'X' => {
            let mut h = String::new();
            for b in s.bytes() {
                if verb == 'x' {
                    h.push_str(&format!("{b:02x}"));
                } else {
                    h.push_str(&format!("{b:02X}"));
                }
            }
            pad(out, &h, spec, false)
        }
        _ => {
            let body: String = match spec.prec {
                Some(p) => s.chars().take(p).collect(),
                None => s.to_string(),
            };
            pad(out, &body, spec, false)
        }
    }
}

fn fmt_arg(out: &mut String, arg: &Value, verb: char, spec: &Spec) {
    match (arg, verb) {
        (Value::Int(i), 'd' | 'b' | 'o' | 'O' | 'x' | 'X' | 'v') => fmt_int(out, *i, verb, spec),
        (Value::Int(i), 'c') => {
            let c = u32::try_from(*i)
                .ok()
                .and_then(char::from_u32)
                .unwrap_or('\u{FFFD}');
            pad(out, &c.to_string(), spec, false)
        }
        (Value::Int(i), 'q') => {
            let c = u32::try_from(*i)
                .ok()
                .and_then(char::from_u32)
                .unwrap_or('\u{FFFD}');
            pad(out, &format!("'{c}'"), spec, false)
        }
        (Value::Float(f), 'e' | 'E' | 'f' | 'F' | 'g' | 'G' | 'v') => {
            fmt_float(out, *f, verb, spec)
        }
        (Value::Str(s), 's' | 'v' | 'q' | 'x' | 'X') => fmt_str(out, s, verb, spec),
        (Value::Bool(b), 't' | 'v') => pad(out, if *b { "true" } else { "false" }, spec, false),
        (Value::Nil | Value::Missing, 'v') => pad(out, "<nil>", spec, false),
        (Value::List(l), _) if verb != 'T' => {
            let mut body = String::from("[");
            for (i, v) in l.iter().enumerate() {
                if i > 0 {
                    body.push(' ');
                }
                fmt_arg(&mut body, v, verb, &Spec::default());
            }
            body.push(']');
            pad(out, &body, spec, false)
        }
        (Value::Map(m), _) if verb != 'T' => {
            let mut body = String::from("map[");
            for (i, (k, v)) in m.iter().enumerate() {
                if i > 0 {
                    body.push(' ');
                }
                fmt_arg(&mut body, &Value::str(k.as_str()), verb, &Spec::default());
                body.push(':');
                fmt_arg(&mut body, v, verb, &Spec::default());
            }
            body.push(']');
            pad(out, &body, spec, false)
        }
        (Value::Struct(_), 'v' | 's') => pad(out, &arg.to_go_string(), spec, false),
        (a, 'T') => pad(out, &a.type_name(), spec, false),
        (a, v) => bad_verb(out, v, a),
    }
}

fn read_num(chars: &[char], i: &mut usize) -> Option<usize> {
    let start = *i;
    let mut n: usize = 0;
    while *i < chars.len() && chars[*i].is_ascii_digit() {
        n = n
            .saturating_mul(10)
            .saturating_add(chars[*i] as usize - '0' as usize);
        *i += 1;
    }
    (*i > start).then_some(n)
}

/// Go's `fmt.Sprintf`, including its `%!verb(...)`, `MISSING`, `EXTRA` and `BADWIDTH` markers.
pub fn sprintf(format: &str, args: &[Value]) -> String {
    let chars: Vec<char> = format.chars().collect();
    let mut out = String::new();
    let mut argi = 0;
    let mut i = 0;
    let mut reordered = false;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        while i < chars.len() {
            match chars[i] {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                '#' => spec.sharp = true,
                ' ' => spec.space = true,
                '0' => spec.zero = !spec.minus,
                _ => break,
            }
            i += 1;
        }
        // Argument index [n].
        let mut arg_index = |i: &mut usize, argi: &mut usize, out: &mut String| -> bool {
            if *i < chars.len() && chars[*i] == '[' {
                reordered = true;
                let mut j = *i + 1;
                let n = read_num(&chars, &mut j);
                if j < chars.len()
                    && chars[j] == ']'
                    && let Some(n) = n.filter(|n| *n >= 1 && *n <= args.len())
                {
                    *argi = n - 1;
                    *i = j + 1;
                    return true;
                }
                *i = if j < chars.len() { j + 1 } else { j };
                out.push_str("%!");
                return false;
            }
            true
        };
        let mut bad_index = !arg_index(&mut i, &mut argi, &mut out);
        let mut bad_width = false;
        if i < chars.len() && chars[i] == '*' {
            i += 1;
            match args.get(argi) {
                Some(Value::Int(w)) => {
                    if w.unsigned_abs() as usize > MAX_WIDTH {
                        bad_width = true;
                    } else {
                        spec.width = Some(w.unsigned_abs() as usize);
                        if *w < 0 {
                            spec.minus = true;
                            spec.zero = false;
                        }
                    }
                }
                _ => bad_width = true,
            }
            argi += 1;
        } else if let Some(w) = read_num(&chars, &mut i) {
            if w > MAX_WIDTH {
                bad_width = true;
            } else {
                spec.width = Some(w);
            }
        }
        if bad_width {
            out.push_str("%!(BADWIDTH)");
        }
        let mut bad_prec = false;
        if i < chars.len() && chars[i] == '.' {
            i += 1;
            if !bad_index {
                bad_index = !arg_index(&mut i, &mut argi, &mut out);
            }
            if i < chars.len() && chars[i] == '*' {
                i += 1;
                match args.get(argi) {
                    Some(Value::Int(p)) if *p >= 0 && (*p as usize) <= MAX_WIDTH => {
                        spec.prec = Some(*p as usize)
                    }
                    _ => bad_prec = true,
                }
                argi += 1;
            } else {
                let p = read_num(&chars, &mut i).unwrap_or(0);
                if p > MAX_WIDTH {
                    bad_prec = true;
                } else {
                    spec.prec = Some(p);
                }
            }
        }
        if bad_prec {
            out.push_str("%!(BADPREC)");
        }
        if !bad_index {
            bad_index = !arg_index(&mut i, &mut argi, &mut out);
        }
        let Some(&verb) = chars.get(i) else {
            out.push_str("%!(NOVERB)");
            break;
        };
        i += 1;
        if verb == '%' {
            out.push('%');
            continue;
        }
        if bad_index {
            out.push(verb);
            out.push_str("(BADINDEX)");
            continue;
        }
        match args.get(argi) {
            None => {
                out.push_str("%!");
                out.push(verb);
                out.push_str("(MISSING)");
            }
            Some(a) => {
                fmt_arg(&mut out, a, verb, &spec);
                argi += 1;
            }
        }
    }
    if !reordered && argi < args.len() {
        out.push_str("%!(EXTRA ");
        for (k, a) in args[argi..].iter().enumerate() {
            if k > 0 {
                out.push_str(", ");
            }
            match a {
                Value::Nil | Value::Missing => out.push_str("<nil>"),
                a => {
                    out.push_str(&a.type_name());
                    out.push('=');
                    a.write_go(&mut out);
                }
            }
        }
        out.push(')');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_v_floats() {
        for (f, want) in [
            (1.0, "1"),
            (0.1, "0.1"),
            (1e6, "1e+06"),
            (123456.0, "123456"),
            (1234567.0, "1.234567e+06"),
            (1e-7, "1e-07"),
            (0.0001, "0.0001"),
            (0.00001234, "1.234e-05"),
            (-2.5, "-2.5"),
            (0.0, "0"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
        ] {
            assert_eq!(format_g(f, None), want, "{f}");
        }
    }

    #[test]
    fn go_g_precision() {
        for (f, p, want) in [
            (1234.567, 4, "1235"),
            (1.234567, 4, "1.235"),
            (1.0, 4, "1"),
            (123.0, 4, "123"),
            (1e6, 4, "1e+06"),
            (12345.0, 4, "1.234e+04"),
            (0.0, 4, "0"),
            (50.0, 4, "50"),
            (100.0, 4, "100"),
            (1000.0, 4, "1000"),
        ] {
            assert_eq!(format_g(f, Some(p)), want, "{f} {p}");
        }
    }

    #[test]
    fn printf_verbs() {
        let v = |s: &str, a: Vec<Value>| sprintf(s, &a);
        assert_eq!(v("%.2f", vec![Value::Float(1234.5)]), "1234.50");
        assert_eq!(v("%d", vec![Value::Float(1.5)]), "%!d(float64=1.5)");
        assert_eq!(v("%s", vec![Value::Int(1)]), "%!s(int=1)");
        assert_eq!(
            v(
                "%5d|%-5d|%05d",
                vec![Value::Int(42), Value::Int(42), Value::Int(-42)]
            ),
            "   42|42   |-0042"
        );
        assert_eq!(v("%q", vec![Value::str("a\"b")]), "\"a\\\"b\"");
        assert_eq!(v("%d %d", vec![Value::Int(1)]), "1 %!d(MISSING)");
        assert_eq!(
            v("%d", vec![Value::Int(1), Value::str("x")]),
            "1%!(EXTRA string=x)"
        );
        assert_eq!(v("%e", vec![Value::Float(1234.5)]), "1.234500e+03");
        assert_eq!(v("%g", vec![Value::Float(1e6)]), "1e+06");
        assert_eq!(
            v("%v %v", vec![Value::Float(0.5), Value::Bool(true)]),
            "0.5 true"
        );
        assert_eq!(v("%x", vec![Value::Int(255)]), "ff");
        assert_eq!(v("100%%", vec![]), "100%");
        assert_eq!(v("%9999999d", vec![Value::Int(1)]), "%!(BADWIDTH)1");
        assert_eq!(v("%+.1f", vec![Value::Float(2.0)]), "+2.0");
        assert_eq!(v("%", vec![]), "%!(NOVERB)");
    }
}

//! Template expansion: Prometheus function formatting, data access, control flow, `query`,
//! error rendering, and robustness on random input.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use klaxon::template::{
    AlertTemplateData, QueryFn, QuerySample, TemplateValue, check_syntax, expand_alert,
    expand_alert_or_error,
};
use proptest::prelude::*;

struct FakeQuery;

impl QueryFn for FakeQuery {
    fn query(&self, q: &str, t_ms: i64) -> Result<Vec<QuerySample>, String> {
        let s = |inst: &str, v: f64| QuerySample {
            labels: BTreeMap::from([
                ("__name__".to_string(), "up".to_string()),
                ("instance".to_string(), inst.to_string()),
            ]),
            value: v,
        };
        match q {
            "up" => Ok(vec![s("c:9100", 1.0), s("a:9100", 0.0), s("b:9100", 1.0)]),
            "time()" => Ok(vec![QuerySample {
                labels: BTreeMap::new(),
                value: t_ms as f64 / 1000.0,
            }]),
            "empty" => Ok(vec![]),
            "huge" => Ok((0..200_000)
                .map(|i| s(&format!("h{i}"), i as f64))
                .collect()),
            _ => Err(format!("1:1: parse error: unexpected character in {q:?}")),
        }
    }
}

fn data(value: TemplateValue) -> AlertTemplateData {
    AlertTemplateData {
        labels: BTreeMap::from([
            ("alertname".to_string(), "HighCPU".to_string()),
            (
                "instance".to_string(),
                "node-1.example.com:9100".to_string(),
            ),
            ("job".to_string(), "node".to_string()),
            ("severity".to_string(), "page".to_string()),
        ]),
        value,
        external_labels: BTreeMap::from([("cluster".to_string(), "eu-west".to_string())]),
        external_url: "https://prometheus.example.com/prom".to_string(),
    }
}

fn render(tmpl: &str, value: f64) -> String {
    expand_alert_or_error(
        "__alert_HighCPU",
        tmpl,
        &data(TemplateValue::Float(value)),
        Some(&FakeQuery),
        1_435_065_584_128,
    )
}

fn table(cases: &[(&str, f64)]) -> String {
    let mut out = String::new();
    for (t, v) in cases {
        let _ = writeln!(out, "{t}  [$value={v}]\n  => {:?}", render(t, *v));
    }
    out
}

#[test]
fn known_prometheus_outputs() {
    let cases: &[(&str, &str)] = &[
        ("{{ humanize 1234567 }}", "1.235M"),
        ("{{ humanize 1234 }}", "1.234k"),
        ("{{ humanize 0.001 }}", "1m"),
        ("{{ humanize 0.000123 }}", "123µ"),
        ("{{ humanize1024 1048576 }}", "1Mi"),
        ("{{ humanizeDuration 90061 }}", "1d 1h 1m 1s"),
        ("{{ humanizeDuration 0.5 }}", "500ms"),
        ("{{ humanizePercentage 0.5 }}", "50%"),
        ("{{ humanizePercentage 0.1234 }}", "12.34%"),
        (
            "{{ humanizeTimestamp 1435065584.128 }}",
            "2015-06-23 13:19:44.128 +0000 UTC",
        ),
    ];
    for (t, want) in cases {
        assert_eq!(render(t, 0.0), *want, "{t}");
    }
}

#[test]
fn function_formatting() {
    insta::assert_snapshot!(table(&[
        (
            "{{ humanize 0 }}|{{ humanize 1 }}|{{ humanize 999.99 }}|{{ humanize 1000 }}|{{ humanize -1234.5 }}",
            0.0
        ),
        (
            "{{ humanize 0.12 }}|{{ humanize 1e-9 }}|{{ humanize 1e30 }}|{{ humanize \"2048\" }}",
            0.0
        ),
        ("{{ $value | humanize }}", f64::INFINITY),
        ("{{ $value | humanize }}", f64::NAN),
        (
            "{{ humanize1024 0.5 }}|{{ humanize1024 1024 }}|{{ humanize1024 1536 }}|{{ humanize1024 1099511627776 }}",
            0.0
        ),
        (
            "{{ humanizeDuration 0 }}|{{ humanizeDuration 1 }}|{{ humanizeDuration 60 }}|{{ humanizeDuration 3600 }}",
            0.0
        ),
        (
            "{{ humanizeDuration 86400 }}|{{ humanizeDuration 899.99 }}|{{ humanizeDuration 1.2345 }}|{{ humanizeDuration 12.345 }}",
            0.0
        ),
        (
            "{{ humanizeDuration 0.1 }}|{{ humanizeDuration 0.0001 }}|{{ humanizeDuration 0.12345 }}|{{ humanizeDuration -90061 }}",
            0.0
        ),
        (
            "{{ humanizePercentage 0 }}|{{ humanizePercentage 1 }}|{{ humanizePercentage 0.00001234 }}",
            0.0
        ),
        (
            "{{ humanizeTimestamp 0 }}|{{ humanizeTimestamp 1435065584 }}|{{ toTime 1435065584.5 }}",
            0.0
        ),
        ("{{ humanizeTimestamp $value }}", f64::NAN),
        (
            "{{ title \"hello world\" }}|{{ toUpper \"abc\" }}|{{ toLower \"ABC\" }}|{{ safeHtml \"<b>\" }}",
            0.0
        ),
        (
            "{{ reReplaceAll \"(.*):.*\" \"$1\" $labels.instance }}|{{ match \"^node\" $labels.instance }}",
            0.0
        ),
        (
            "{{ stripPort $labels.instance }}|{{ stripDomain $labels.instance }}|{{ stripPort \"[::1]:80\" }}|{{ stripDomain \"10.0.0.1:80\" }}",
            0.0
        ),
        (
            "{{ graphLink \"rate(x[5m]) > 1\" }}|{{ tableLink \"up\" }}",
            0.0
        ),
        (
            "{{ externalURL }}|{{ pathPrefix }}|{{ parseDuration \"1h30m\" }}|{{ parseDuration \"500ms\" }}",
            0.0
        ),
        (
            "{{ with args 1 \"b\" }}{{ .arg0 }}-{{ .arg1 }}{{ end }}",
            0.0
        ),
        (
            "{{ printf \"%.2f\" $value }}|{{ printf \"%5.1f%%\" $value }}|{{ printf \"%d\" $value }}|{{ printf \"%s\" $labels.job }}",
            93.456
        ),
        (
            "{{ printf \"%v %q %x %e %g\" 42 \"q\" 255 1234.5 0.000001 }}|{{ printf \"%d %d\" 1 }}",
            0.0
        ),
        (
            "{{ html \"<a href='x'>&\" }}|{{ js \"it's <b>\" }}|{{ urlquery \"a b&c\" }}|{{ print 1 2 \"x\" 3 }}|{{ len $labels }}",
            0.0
        ),
        (
            "{{ index $labels \"job\" }}|{{ index $labels \"nope\" }}|{{ slice \"abcdef\" 1 3 }}|{{ and 1 0 }}|{{ or 0 \"x\" }}|{{ not true }}",
            0.0
        ),
    ]));
}

#[test]
fn data_access_and_control_flow() {
    insta::assert_snapshot!(table(&[
        ("{{ $labels.instance }} is down ({{ .Labels.job }})", 1.0),
        ("value={{ $value }} / {{ .Value }}", 1234567.0),
        ("value={{ $value }}", 0.000012),
        ("value={{ $value }}", f64::INFINITY),
        (
            "{{ $externalLabels.cluster }} {{ $externalURL }} {{ $labels.missing }}",
            0.0
        ),
        (
            "{{ if gt $value 90.0 }}critical{{ else if gt $value 70.0 }}warning{{ else }}ok{{ end }}",
            75.0
        ),
        (
            "{{ if and (eq $labels.severity \"page\") (ge $value 1.0) }}page!{{ end }}",
            1.0
        ),
        ("{{ with $labels.missing }}has{{ else }}none{{ end }}", 0.0),
        (
            "{{ range $k, $v := $labels }}{{ $k }}={{ $v }}, {{ end }}",
            0.0
        ),
        (
            "{{ range $i, $x := $labels }}{{ if eq $i \"job\" }}{{ continue }}{{ end }}{{ $i }} {{ end }}",
            0.0
        ),
        (
            "{{- /* comment */ -}}\n  {{ $x := \"a\" }}{{ if true }}{{ $x = \"b\" }}{{ end }}{{ $x }}  \n",
            0.0
        ),
        (
            "{{ define \"row\" }}<{{ . }}>{{ end }}{{ template \"row\" $labels.job }}{{ block \"b\" 1 }}[{{ . }}]{{ end }}",
            0.0
        ),
    ]));
}

#[test]
fn query_function() {
    insta::assert_snapshot!(table(&[
        ("{{ query \"up\" | len }} series", 0.0),
        (
            "{{ range query \"up\" }}{{ .Labels.instance }}={{ .Value }} {{ end }}",
            0.0
        ),
        (
            "{{ range query \"up\" | sortByLabel \"instance\" }}{{ label \"instance\" . }}:{{ value . }} {{ end }}",
            0.0
        ),
        (
            "{{ with query \"up\" }}{{ . | first | label \"instance\" }}{{ end }}",
            0.0
        ),
        (
            "{{ query \"time()\" | first | value | humanizeTimestamp }}",
            0.0
        ),
        (
            "{{ with query \"empty\" }}some{{ else }}no data{{ end }}",
            0.0
        ),
        ("{{ query \"empty\" | first | value }}", 0.0),
        ("{{ query \"bad(\" }}", 0.0),
        ("{{ range query \"huge\" }}{{ .Value }}{{ end }}", 0.0),
    ]));
}

#[test]
fn error_rendering() {
    insta::assert_snapshot!(table(&[
        ("{{ nosuchfunc $value }}", 0.0),
        ("{{ $labels.instance", 0.0),
        ("{{", 0.0),
        ("{{ range }}{{ end }}", 0.0),
        ("{{ if true }}unterminated", 0.0),
        ("{{ end }}", 0.0),
        ("{{ $value | }}", 0.0),
        ("{{ $undefined }}", 0.0),
        ("{{ \"unterminated }}", 0.0),
        ("{{ @ }}", 0.0),
        ("{{ humanize \"abc\" }}", 0.0),
        ("{{ humanize }}", 0.0),
        ("{{ .NoSuchField }}", 0.0),
        ("{{ $labels.job.foo }}", 0.0),
        ("{{ gt $value 1 }}", 5.0),
        ("{{ range $value }}{{ end }}", 5.0),
        ("{{ template \"nope\" }}", 0.0),
        ("{{ index $labels 1 }}", 0.0),
        ("{{ reReplaceAll \"(\" \"\" \"x\" }}", 0.0),
        ("{{ $labels.missing | toUpper }}", 0.0),
        ("line1\n{{ if }}", 0.0),
        ("{{ 1 2 }}", 0.0),
    ]));
}

#[test]
fn limits_never_hang() {
    let out = render("{{ range 1000000000 }}{{ end }}", 0.0);
    assert!(
        out.contains("exceeded maximum number of execution steps"),
        "{out}"
    );
    let out = render(
        "{{ range query \"huge\" }}{{ range query \"huge\" }}{{ end }}{{ end }}",
        0.0,
    );
    assert!(out.starts_with("<error expanding template:"), "{out}");
    let out = render("{{ range 100000 }}{{ printf \"%10000d\" 1 }}{{ end }}", 0.0);
    assert!(out.contains("output exceeds maximum size"), "{out}");
    let start = std::time::Instant::now();
    let out = render(
        "{{ range 1000000 }}{{ $x := printf \"%1000000d\" 1 }}{{ end }}",
        0.0,
    );
    assert!(
        out.contains("exceeded maximum number of execution steps"),
        "{out}"
    );
    let out = render("{{ range 1000000 }}{{ query \"up\" }}{{ end }}", 0.0);
    assert!(
        out.contains("exceeded maximum number of execution steps"),
        "{out}"
    );
    let out = render(
        "{{ $s := \"xxxxxxxxxxxxxxxx\" }}{{ range 100 }}{{ $s = print $s $s }}{{ end }}",
        0.0,
    );
    assert!(
        out.contains("result of print exceeds maximum size"),
        "{out}"
    );
    assert!(start.elapsed() < std::time::Duration::from_secs(30));
    let out = render(
        "{{ define \"a\" }}{{ if true }}{{ with 1 }}{{ template \"a\" }}{{ end }}{{ end }}{{ end }}{{ template \"a\" }}",
        0.0,
    );
    assert!(out.contains("exceeded maximum template depth"), "{out}");
    let out = render("{{ printf \"%999999999d\" 1 }}", 0.0);
    assert_eq!(out, "%!(BADWIDTH)1");
    let out = render(&"{{ if true }}".repeat(10_000), 0.0);
    assert!(out.contains("max nesting depth"), "{out}");
    let out = render(
        &format!("{{{{ {}1{} }}}}", "(".repeat(10_000), ")".repeat(10_000)),
        0.0,
    );
    assert!(out.contains("max nesting depth"), "{out}");
}

#[test]
fn string_value_and_syntax_check() {
    let d = data(TemplateValue::Str("{count:3}".to_string()));
    assert_eq!(
        expand_alert("__alert_X", "v={{ $value }}", &d, None, 0).unwrap(),
        "v={count:3}"
    );
    let err = expand_alert("__alert_X", "{{ query \"up\" }}", &d, None, 0).unwrap_err();
    assert!(err.to_string().contains("error calling query"), "{err}");
    assert!(check_syntax("{{ $labels.instance }} {{ $value | humanize }}").is_ok());
    assert_eq!(
        check_syntax("{{ humanise $value }}")
            .unwrap_err()
            .to_string(),
        "error parsing template __alert_: template: __alert_:1: function \"humanise\" not defined"
    );
}

fn template_fragment() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            "{{",
            "}}",
            "{{-",
            "-}}",
            " ",
            "$labels",
            "$value",
            ".Labels",
            ".x",
            ".",
            "|",
            "(",
            ")",
            ":=",
            "=",
            ",",
            "\"s\"",
            "`r`",
            "'c'",
            "1",
            "-2.5e3",
            "0x1f",
            "if",
            "else",
            "end",
            "range",
            "with",
            "define",
            "template",
            "block",
            "break",
            "continue",
            "humanize",
            "printf",
            "\"%d%s%v%q%.2f%*d\"",
            "query",
            "\"up\"",
            "first",
            "index",
            "slice",
            "len",
            "eq",
            "lt",
            "and",
            "or",
            "not",
            "nil",
            "true",
            "/*",
            "*/",
            "\n",
            "x",
            "$x",
            "$",
            "@",
            "\\",
            "\"",
            "reReplaceAll",
            "args",
            "label",
            "value",
        ]),
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn never_panics_on_token_soup(t in template_fragment(), v in any::<f64>()) {
        let out = render(&t, v);
        let _ = check_syntax(&t);
        prop_assert!(out.len() <= 2 << 20);
    }

    #[test]
    fn never_panics_on_arbitrary_text(t in ".{0,200}") {
        let _ = render(&t, 1.0);
        let _ = render(&format!("{{{{ {t} }}}}"), 1.0);
        let _ = check_syntax(&t);
    }

    #[test]
    fn printf_never_panics(f in ".{0,40}", i in any::<i64>(), x in any::<f64>()) {
        let t = format!("{{{{ printf {:?} {i} {x:?} \"s\" }}}}", f);
        let _ = render(&t, x);
    }
}

use std::collections::BTreeMap;

use super::*;

struct FakeQuery;

impl QueryFn for FakeQuery {
    fn query(&self, q: &str, _t_ms: i64) -> Result<Vec<QuerySample>, String> {
        match q {
            "up" => Ok(vec![
                QuerySample {
                    labels: BTreeMap::from([
                        ("instance".into(), "b:9090".into()),
                        ("job".into(), "x".into()),
                    ]),
                    value: 0.0,
                },
                QuerySample {
                    labels: BTreeMap::from([
                        ("instance".into(), "a:9090".into()),
                        ("job".into(), "x".into()),
                    ]),
                    value: 1.0,
                },
            ]),
            "none" => Ok(vec![]),
            _ => Err(format!("parse error: {q}")),
        }
    }
}

fn data(v: f64) -> AlertTemplateData {
    AlertTemplateData {
        labels: BTreeMap::from([
            ("instance".into(), "host.example.com:9100".into()),
            ("job".into(), "node".into()),
        ]),
        value: TemplateValue::Float(v),
        external_labels: BTreeMap::from([("cluster".into(), "eu1".into())]),
        external_url: "https://prom.example.com/prometheus".into(),
    }
}

fn ex(t: &str, v: f64) -> String {
    expand_alert_or_error("__alert_Test", t, &data(v), Some(&FakeQuery), 0)
}

#[test]
fn labels_value_printf_humanize() {
    assert_eq!(
        ex("{{ $labels.instance }} {{ .Labels.job }}", 1.0),
        "host.example.com:9100 node"
    );
    assert_eq!(ex("{{ $value }}", 1e6), "1e+06");
    assert_eq!(ex("{{ .Value }}", 0.5), "0.5");
    assert_eq!(ex("{{ printf \"%.2f\" $value }}", 1234.5678), "1234.57");
    assert_eq!(ex("{{ $value | humanize }}", 1234567.0), "1.235M");
    assert_eq!(ex("{{ humanize \"1234\" }}", 0.0), "1.234k");
    assert_eq!(
        ex("{{ $externalLabels.cluster }} {{ $externalURL }}", 0.0),
        "eu1 https://prom.example.com/prometheus"
    );
    assert_eq!(ex("{{ $labels.missing }}", 0.0), "<no value>");
    assert_eq!(ex("plain", 0.0), "plain");
    assert_eq!(ex("{{ $value | printf \"%.1f\" }}", 2.25), "2.2");
    assert_eq!(ex("{{ .Value | humanizePercentage }}", 0.256), "25.6%");
    assert_eq!(ex("{{ \"a\" | printf \"%s-%s\" \"b\" }}", 0.0), "b-a");
    assert_eq!(
        ex("{{ $labels }}", 0.0),
        "map[instance:host.example.com:9100 job:node]"
    );
}

#[test]
fn control_flow() {
    assert_eq!(
        ex(
            "{{ if gt $value 80.0 }}high{{ else if gt $value 50.0 }}mid{{ else }}low{{ end }}",
            60.0
        ),
        "mid"
    );
    assert_eq!(
        ex("{{ with $labels.job }}job={{ . }}{{ end }}", 0.0),
        "job=node"
    );
    assert_eq!(
        ex(
            "{{ range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end }}",
            0.0
        ),
        "instance=host.example.com:9100;job=node;"
    );
    assert_eq!(
        ex("{{- $x := 1 }} a {{- $x = 2 }} {{ $x -}} \n b", 0.0),
        " a 2b"
    );
    assert_eq!(
        ex(
            "{{ range $i, $e := query \"up\" }}{{ if eq $i 1 }}{{ break }}{{ end }}{{ $e.Labels.instance }}{{ end }}",
            0.0
        ),
        "b:9090"
    );
    assert_eq!(
        ex(
            "{{ define \"x\" }}[{{ . }}]{{ end }}{{ template \"x\" $labels.job }}",
            0.0
        ),
        "[node]"
    );
}

#[test]
fn query_functions() {
    assert_eq!(ex("{{ query \"up\" | first | value }}", 0.0), "0");
    assert_eq!(
        ex("{{ query \"up\" | first | label \"instance\" }}", 0.0),
        "b:9090"
    );
    assert_eq!(
        ex(
            "{{ range query \"up\" | sortByLabel \"instance\" }}{{ .Labels.instance }} {{ .Value }};{{ end }}",
            0.0
        ),
        "a:9090 1;b:9090 0;"
    );
    assert_eq!(
        ex("{{ query \"none\" | first }}", 0.0),
        "<error expanding template: error executing template __alert_Test: template: __alert_Test:1:130: executing \"__alert_Test\" at <first>: error calling first: first() called on vector with no elements>"
    );
    assert!(ex("{{ query \"bad(\" }}", 0.0).contains("error calling query: parse error: bad("));
}

#[test]
fn errors_render_like_prometheus() {
    assert_eq!(
        ex("{{ nosuch 1 }}", 0.0),
        "<error expanding template: error parsing template __alert_Test: template: __alert_Test:1: function \"nosuch\" not defined>"
    );
    assert_eq!(
        ex("{{ .Labels", 0.0),
        "<error expanding template: error parsing template __alert_Test: template: __alert_Test:1: unclosed action>"
    );
    assert_eq!(
        ex("{{ if 1 }}", 0.0),
        "<error expanding template: error parsing template __alert_Test: template: __alert_Test:1: unexpected EOF>"
    );
    assert_eq!(
        ex("{{ humanize \"x\" }}", 0.0),
        "<error expanding template: error executing template __alert_Test: template: __alert_Test:1:115: executing \"__alert_Test\" at <humanize \"x\">: error calling humanize: strconv.ParseFloat: parsing \"x\": invalid syntax>"
    );
    assert!(ex("{{ .Foo }}", 0.0).contains("can't evaluate field Foo in type struct"));
    assert!(check_syntax("{{ humanise $value }}").is_err());
    assert!(check_syntax("{{ $value | humanize }}").is_ok());
}

#[test]
fn limits() {
    let r = ex("{{ range 100000000 }}x{{ end }}", 0.0);
    assert!(
        r.contains("exceeded maximum number of execution steps"),
        "{r}"
    );
    let r = ex(
        "{{ define \"a\" }}{{ template \"a\" }}{{ end }}{{ template \"a\" }}",
        0.0,
    );
    assert!(r.contains("exceeded maximum template depth"), "{r}");
    assert_eq!(ex("{{ (1) }}", 0.0), "1");
    let deep = format!("{{{{ {}1{} }}}}", "(".repeat(5000), ")".repeat(5000));
    assert!(ex(&deep, 0.0).contains("max nesting depth"));
    let deep = "{{ if 1 }}".repeat(5000);
    assert!(ex(&deep, 0.0).contains("max nesting depth"));
}

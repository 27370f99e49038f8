//! Message templates: klaxon's default templates under Alertmanager's template names (so
//! configurations that call `{{ template "slack.default.title" . }}` or override
//! `email.default.html` keep working), the `templates:` files from the configuration, and the
//! per-field templates of each integration, all parsed when the notifier is built.
//!
//! klaxon's interpreter resolves `{{ template "x" }}` within one parse, so each field is parsed
//! after a prelude holding every `{{ define }}` of the defaults and of the template files
//! (later definitions win, as in Alertmanager). Text outside `define`s in template files is
//! ignored, as Go ignores it for notification fields. Error positions are mapped back to the
//! file or field they came from.

use std::sync::Arc;

use super::data::{Escape, template_data};
use super::error::NotifyError;
use super::functions::NotifyFunctions;
use crate::dispatch::Notification;
use crate::template::{Limits, TemplateError, Tree, Value, execute_template, parse_template};

/// klaxon's default notification templates, under Alertmanager's names. The HTML body is
/// rendered with HTML-escaped data, so values need no `html` calls.
pub const DEFAULT_TEMPLATES: &str = r##"{{ define "__alertmanager" }}klaxon{{ end }}
{{ define "__alertmanagerURL" }}{{ .ExternalURL }}{{ end }}
{{ define "__description" }}{{ end }}

{{/* "[FIRING:2] api (page)": status, group label values, other common label values. */}}
{{ define "__subject" -}}
[{{ .Status | toUpper }}{{ if eq .Status "firing" }}:{{ len .Alerts.Firing }}{{ end }}]
{{- with .GroupLabels.Values }} {{ join " " . }}{{ end }}
{{- with .CommonLabels.Remove .GroupLabels.Names }} ({{ join " " .Values }}){{ end }}
{{- end }}

{{/* Plain-text list of the alerts in dot. */}}
{{ define "__text_alert_list" -}}
{{ range . -}}
* {{ .Labels.alertname }}{{ with .Annotations.summary }} - {{ . }}{{ end }}
  labels:{{ range .Labels.SortedPairs }} {{ .Name }}="{{ .Value }}"{{ end }}
{{ range (.Annotations.Remove (stringSlice "summary")).SortedPairs }}  {{ .Name }}: {{ .Value }}
{{ end }}  since: {{ .StartsAt.Format "2006-01-02 15:04:05 MST" }}
{{- if eq .Status "resolved" }}, resolved: {{ .EndsAt.Format "2006-01-02 15:04:05 MST" }}{{ end }}
{{ with .GeneratorURL }}  source: {{ . }}
{{ end }}{{ end -}}
{{ end }}

{{/* HTML table of the alerts in dot (data is already HTML-escaped). */}}
{{ define "__html_alert_list" -}}
<table style="border-collapse: collapse; margin: 0 0 16px;">
{{ range . -}}
<tr><td colspan="2" style="padding: 8px 0 2px;"><b>{{ .Labels.alertname }}</b>{{ with .Annotations.summary }}: {{ . }}{{ end }}</td></tr>
{{ range .Labels.SortedPairs }}<tr><td style="padding: 0 12px; color: #666;">{{ .Name }}</td><td>{{ .Value }}</td></tr>
{{ end }}{{ range (.Annotations.Remove (stringSlice "summary")).SortedPairs }}<tr><td style="padding: 0 12px; color: #666;">{{ .Name }}</td><td>{{ .Value }}</td></tr>
{{ end }}<tr><td style="padding: 0 12px; color: #666;">since</td><td>{{ .StartsAt.Format "2006-01-02 15:04:05 MST" }}{{ if eq .Status "resolved" }} (resolved {{ .EndsAt.Format "2006-01-02 15:04:05 MST" }}){{ end }}</td></tr>
{{ with .GeneratorURL }}<tr><td></td><td><a href="{{ . }}">source</a></td></tr>
{{ end }}{{ end -}}
</table>
{{ end }}

{{ define "email.default.subject" }}{{ template "__subject" . }}{{ end }}

{{ define "email.default.text" -}}
{{ template "__subject" . }}
{{ if gt .DigestOf 1 }}
This message folds {{ .DigestOf }} notifications held back by the rate limit.
{{ end }}{{ with .Escalation }}
Escalation {{ .Policy }}: step {{ .Step }} of {{ .Steps }}.
{{ end }}{{ with .Alerts.Firing }}
Firing ({{ len . }}):
{{ template "__text_alert_list" . }}{{ end }}{{ with .Alerts.Resolved }}
Resolved ({{ len . }}):
{{ template "__text_alert_list" . }}{{ end }}{{ with .Related }}
Related alerts ({{ len . }}):
{{ template "__text_alert_list" . }}{{ end }}{{ with .ExternalURL }}
-- 
klaxon at {{ . }}
{{ end }}{{ end }}

{{ define "email.default.html" -}}
<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>{{ template "__subject" . }}</title></head>
<body style="font-family: Helvetica, Arial, sans-serif; font-size: 14px; color: #222; margin: 16px;">
<h2 style="margin: 0 0 12px; color: {{ if eq .Status "firing" }}#b3261e{{ else }}#1e7b34{{ end }};">{{ template "__subject" . }}</h2>
{{ if gt .DigestOf 1 }}<p>This message folds {{ .DigestOf }} notifications held back by the rate limit.</p>
{{ end }}{{ with .Escalation }}<p>Escalation <b>{{ .Policy }}</b>: step {{ .Step }} of {{ .Steps }}.</p>
{{ end }}{{ with .Alerts.Firing }}<h3>Firing ({{ len . }})</h3>
{{ template "__html_alert_list" . }}{{ end }}{{ with .Alerts.Resolved }}<h3>Resolved ({{ len . }})</h3>
{{ template "__html_alert_list" . }}{{ end }}{{ with .Related }}<h3>Related alerts ({{ len . }})</h3>
{{ template "__html_alert_list" . }}{{ end }}{{ with .ExternalURL }}<p style="color: #777; font-size: 12px;">Sent by <a href="{{ . }}">klaxon</a></p>
{{ end }}</body>
</html>
{{ end }}

{{ define "slack.default.title" }}{{ template "__subject" . }}{{ end }}
{{ define "slack.default.username" }}{{ template "__alertmanager" . }}{{ end }}
{{ define "slack.default.titlelink" }}{{ template "__alertmanagerURL" . }}{{ end }}
{{ define "slack.default.fallback" }}{{ template "slack.default.title" . }}{{ with .ExternalURL }} | {{ . }}{{ end }}{{ end }}
{{ define "slack.default.pretext" }}{{ end }}
{{ define "slack.default.iconemoji" }}{{ end }}
{{ define "slack.default.iconurl" }}{{ end }}
{{ define "slack.default.color" }}{{ if eq .Status "firing" }}danger{{ else }}good{{ end }}{{ end }}
{{ define "slack.default.text" -}}
{{ if gt .DigestOf 1 }}_Folds {{ .DigestOf }} rate-limited notifications._
{{ end }}{{ with .Escalation }}_Escalation {{ .Policy }}: step {{ .Step }} of {{ .Steps }}._
{{ end }}{{ range .Alerts -}}
{{ if eq .Status "firing" }}:red_circle:{{ else }}:large_green_circle:{{ end }} *{{ .Labels.alertname }}*
{{- with .Annotations.summary }} {{ . }}{{ end }}
{{- with (.Labels.Remove $.CommonLabels.Names).Remove (stringSlice "alertname") }} ({{ . }}){{ end }}
{{ end }}{{ with .Related }}Related: {{ range $i, $a := . }}{{ if $i }}, {{ end }}{{ $a.Labels.alertname }}{{ end }}
{{ end }}{{ end }}
"##;

/// One source of `define`s in the prelude, for mapping error lines back.
#[derive(Debug, Clone)]
struct Segment {
    name: String,
    first_line: usize,
}

/// The defaults plus the configuration's template files, ready to parse field templates
/// against.
#[derive(Debug, Clone)]
pub struct TemplateSet {
    prelude: Arc<str>,
    prelude_lines: usize,
    segments: Arc<Vec<Segment>>,
}

const SEP: &str = "{{/*\n*/}}";

impl TemplateSet {
    /// Checks every file parses on its own (errors name the file) and builds the prelude.
    pub fn new(files: &[(String, String)]) -> Result<TemplateSet, NotifyError> {
        let funcs = NotifyFunctions::new(0);
        let mut prelude = String::new();
        let mut segments = Vec::new();
        let mut line = 1;
        let sources = std::iter::once(("<default templates>", DEFAULT_TEMPLATES))
            .chain(files.iter().map(|(n, t)| (n.as_str(), t.as_str())));
        for (name, text) in sources {
            parse_template(name, text, &funcs).map_err(|e| NotifyError::Template {
                what: format!("template file {name}"),
                error: e.to_string(),
            })?;
            segments.push(Segment {
                name: name.to_string(),
                first_line: line,
            });
            let stripped = strip_top_level(text);
            line += stripped.matches('\n').count() + 1;
            prelude.push_str(&stripped);
            prelude.push_str(SEP);
        }
        let set = TemplateSet {
            prelude_lines: line - 1,
            prelude: Arc::from(prelude),
            segments: Arc::new(segments),
        };
        // The files together must parse too (a define split oddly across files would not).
        parse_template("<templates>", &set.prelude, &funcs).map_err(|e| NotifyError::Template {
            what: "template files".into(),
            error: set.remap(e, "<templates>").to_string(),
        })?;
        Ok(set)
    }

    /// Parses a field template (`what` names it in errors, e.g. `ops/slack[0] title`).
    pub fn compile(&self, what: &str, text: &str, escape: Escape) -> Result<Field, NotifyError> {
        if !text.contains("{{") {
            return Ok(Field {
                what: what.into(),
                kind: FieldKind::Literal(text.into()),
                escape,
            });
        }
        let funcs = NotifyFunctions::new(0);
        let full = format!("{}{text}", self.prelude);
        let tree = parse_template(what, &full, &funcs).map_err(|e| NotifyError::Template {
            what: what.into(),
            error: self.remap(e, what).to_string(),
        })?;
        Ok(Field {
            what: what.into(),
            kind: FieldKind::Tree(Box::new(tree), self.clone()),
            escape,
        })
    }

    /// Maps a line in prelude + field text back to its file or to the field.
    fn locate(&self, line: usize, field: &str) -> (String, usize) {
        if line > self.prelude_lines {
            return (field.to_string(), line - self.prelude_lines);
        }
        let seg = self
            .segments
            .iter()
            .rev()
            .find(|s| s.first_line <= line)
            .map(|s| (s.name.clone(), line + 1 - s.first_line));
        seg.unwrap_or_else(|| (field.to_string(), line))
    }

    fn remap(&self, e: TemplateError, field: &str) -> TemplateError {
        match e {
            TemplateError::Parse { line, msg, .. } => {
                let (name, line) = self.locate(line, field);
                TemplateError::Parse { name, line, msg }
            }
            TemplateError::Exec {
                line,
                col,
                context,
                msg,
                ..
            } => {
                let (name, line) = self.locate(line, field);
                TemplateError::Exec {
                    name,
                    line,
                    col,
                    context,
                    msg,
                }
            }
        }
    }
}

#[derive(Debug)]
enum FieldKind {
    Literal(String),
    Tree(Box<Tree>, TemplateSet),
}

/// A parsed field template (subject, body, Slack title...).
#[derive(Debug)]
pub struct Field {
    what: String,
    kind: FieldKind,
    escape: Escape,
}

/// Template data for one notification, built lazily per escaping mode.
pub struct RenderData<'a> {
    n: &'a Notification,
    plain: std::cell::OnceCell<Value>,
    html: std::cell::OnceCell<Value>,
}

impl<'a> RenderData<'a> {
    /// Data for `n`.
    pub fn new(n: &'a Notification) -> Self {
        RenderData {
            n,
            plain: std::cell::OnceCell::new(),
            html: std::cell::OnceCell::new(),
        }
    }

    fn get(&self, esc: Escape) -> &Value {
        match esc {
            Escape::None => self.plain.get_or_init(|| template_data(self.n, esc)),
            Escape::Html => self.html.get_or_init(|| template_data(self.n, esc)),
        }
    }
}

impl Field {
    /// Renders the field; the error names the field and position.
    pub fn render(&self, data: &RenderData<'_>) -> Result<String, String> {
        match &self.kind {
            FieldKind::Literal(s) => Ok(s.clone()),
            FieldKind::Tree(tree, set) => {
                let funcs = NotifyFunctions::new(data.n.now_ms);
                execute_template(tree, data.get(self.escape), &funcs, Limits::default())
                    .map_err(|e| set.remap(e, &self.what).to_string())
            }
        }
    }
}

/// Index after the `}}` closing the action that starts at `start` (`{{` at `start`).
fn action_end(src: &str, start: usize) -> usize {
    let b = src.as_bytes();
    let mut i = start + 2;
    // Comments: `{{/* ... */}}`, `{{- /* ... */ -}}`.
    let mut j = i;
    if b.get(j) == Some(&b'-') {
        j += 1;
        while j < b.len() && b[j].is_ascii_whitespace() {
            j += 1;
        }
    }
    if src[j..].starts_with("/*") {
        return match src[j + 2..].find("*/") {
            Some(k) => {
                let after = j + 2 + k + 2;
                src[after..].find("}}").map_or(src.len(), |m| after + m + 2)
            }
            None => src.len(),
        };
    }
    while i < b.len() {
        match b[i] {
            b'"' | b'\'' => {
                let q = b[i];
                i += 1;
                while i < b.len() && b[i] != q {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'`' => {
                i += 1;
                while i < b.len() && b[i] != b'`' {
                    i += 1;
                }
                i += 1;
            }
            b'}' if b.get(i + 1) == Some(&b'}') => return i + 2,
            _ => i += 1,
        }
    }
    src.len()
}

/// The keyword an action starts with (`define`, `if`, `end`...), or "".
fn keyword(action: &str) -> &str {
    let mut s = &action[2..];
    if let Some(r) = s.strip_prefix('-') {
        s = r;
    }
    let s = s.trim_start();
    let end = s
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(s.len());
    &s[..end]
}

/// The quoted name after `block` in a `{{ block "name" pipeline }}` action.
fn block_name(action: &str) -> Option<&str> {
    let after = &action[action.find("block")? + 5..];
    let after = after.trim_start();
    let q = after.chars().next()?;
    if q != '"' && q != '`' {
        return None;
    }
    let end = after[1..].find(q)?;
    Some(&after[..end + 2])
}

fn filler(out: &mut String, region: &str) {
    let n = region.matches('\n').count();
    if n > 0 {
        out.push_str("{{/*");
        out.extend(std::iter::repeat_n('\n', n));
        out.push_str("*/}}");
    }
}

/// Keeps only the `define`s (and top-level `block`s, as defines) of a template file, replacing
/// everything else by comments with the same number of lines.
pub(crate) fn strip_top_level(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut region_start = 0;
    let mut define_start = 0;
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(off) = src[i..].find("{{") {
        let start = i + off;
        let end = action_end(src, start);
        let action = &src[start..end];
        let kw = keyword(action);
        if depth == 0 {
            if kw == "define" || kw == "block" {
                filler(&mut out, &src[region_start..start]);
                depth = 1;
                define_start = end;
                if kw == "block" {
                    match block_name(action) {
                        Some(name) => {
                            out.push_str("{{ define ");
                            out.push_str(name);
                            out.push_str(if action.ends_with("-}}") {
                                " -}}"
                            } else {
                                " }}"
                            });
                        }
                        None => out.push_str(action),
                    }
                } else {
                    out.push_str(action);
                }
            }
        } else {
            match kw {
                "if" | "range" | "with" | "block" | "define" => depth += 1,
                "end" => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                out.push_str(&src[define_start..end]);
                region_start = end;
            }
        }
        i = end;
    }
    if depth > 0 {
        out.push_str(&src[define_start..]);
    } else {
        filler(&mut out, &src[region_start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_level_text_is_dropped_but_lines_are_kept() {
        let src = "hello\n{{ define \"a\" }}A{{ if 1 }}x{{ end }}{{ end }}\nbye {{ .X }}\n{{ block \"b\" . -}}\nB{{ end }}\n";
        let s = strip_top_level(src);
        assert_eq!(s.matches('\n').count(), src.matches('\n').count());
        assert!(!s.contains("hello") && !s.contains("bye"), "{s}");
        let set = TemplateSet::new(&[("f.tmpl".into(), src.into())]).unwrap();
        let f = set
            .compile(
                "t",
                "{{ template \"a\" . }}|{{ template \"b\" . }}",
                Escape::None,
            )
            .unwrap();
        let n = crate::dispatch::Notification {
            receiver: "r".into(),
            group_key: String::new(),
            group_labels: crate::model::Labels::empty(),
            alerts: vec![],
            now_ms: 0,
            external_url: String::new(),
            related: vec![],
            escalation: None,
            digest_of: 0,
        };
        assert_eq!(f.render(&RenderData::new(&n)).unwrap(), "Ax|B");
    }

    #[test]
    fn every_default_template_renders() {
        use crate::dispatch::{Alert, EscalationInfo};
        use crate::model::Labels;
        let a = |name: &str, ends: i64| Alert {
            labels: Labels::from_pairs([("alertname", name), ("job", "api")]),
            annotations: Labels::from_pairs([("summary", "s"), ("description", "d")]),
            starts_at: 1_000,
            ends_at: ends,
            generator_url: "http://g".into(),
            updated_at: 1_000,
            timeout: false,
        };
        let n = crate::dispatch::Notification {
            receiver: "r".into(),
            group_key: "k".into(),
            group_labels: Labels::from_pairs([("job", "api")]),
            alerts: vec![a("A", 0), a("B", 2_000)],
            now_ms: 5_000,
            external_url: "http://klaxon".into(),
            related: vec![a("Symptom", 0)],
            escalation: Some(EscalationInfo {
                policy: "p".into(),
                step: 0,
                steps: 2,
            }),
            digest_of: 3,
        };
        let set = TemplateSet::new(&[]).unwrap();
        let data = RenderData::new(&n);
        let names = [
            "__alertmanager",
            "__alertmanagerURL",
            "__subject",
            "__description",
            "email.default.subject",
            "email.default.text",
            "email.default.html",
            "slack.default.title",
            "slack.default.username",
            "slack.default.titlelink",
            "slack.default.fallback",
            "slack.default.pretext",
            "slack.default.iconemoji",
            "slack.default.iconurl",
            "slack.default.color",
            "slack.default.text",
        ];
        let mut out = std::collections::HashMap::new();
        for name in names {
            let esc = if name.ends_with("html") {
                Escape::Html
            } else {
                Escape::None
            };
            let f = set
                .compile(name, &format!("{{{{ template \"{name}\" . }}}}"), esc)
                .unwrap();
            out.insert(
                name,
                f.render(&data).unwrap_or_else(|e| panic!("{name}: {e}")),
            );
        }
        let lists = set
            .compile("l", "{{ template \"__text_alert_list\" .Alerts }}{{ template \"__html_alert_list\" .Related }}", Escape::Html)
            .unwrap();
        assert!(lists.render(&data).unwrap().contains("Symptom"));
        assert_eq!(out["__subject"], "[FIRING:1] api");
        let text = &out["email.default.text"];
        for want in [
            "folds 3 notifications",
            "Escalation p: step 1 of 2",
            "Firing (1):",
            "Resolved (1):",
            "Related alerts (1):",
            "* Symptom - s",
            "description: d",
        ] {
            assert!(text.contains(want), "{want:?} missing from:\n{text}");
        }
        assert!(out["slack.default.text"].contains("_Folds 3 rate-limited notifications._"));
        assert!(out["slack.default.text"].contains("Related: Symptom"));
        assert_eq!(out["slack.default.color"], "danger");
        assert_eq!(out["slack.default.username"], "klaxon");
        assert!(out["email.default.html"].contains("Related alerts (1)"));
    }

    #[test]
    fn files_override_defaults_and_errors_name_the_source() {
        let set = TemplateSet::new(&[(
            "mine.tmpl".into(),
            "{{ define \"__alertmanager\" }}pager{{ end }}\n{{ define \"bad\" }}\n{{ .Nope.Deeper }}{{ end }}".into(),
        )])
        .unwrap();
        let f = set
            .compile(
                "r/slack[0] username",
                "{{ template \"slack.default.username\" . }}",
                Escape::None,
            )
            .unwrap();
        let n = crate::dispatch::Notification {
            receiver: "r".into(),
            group_key: String::new(),
            group_labels: crate::model::Labels::empty(),
            alerts: vec![],
            now_ms: 0,
            external_url: String::new(),
            related: vec![],
            escalation: None,
            digest_of: 0,
        };
        assert_eq!(f.render(&RenderData::new(&n)).unwrap(), "pager");
        let f = set
            .compile(
                "r/slack[0] text",
                "x\n{{ template \"bad\" . }}",
                Escape::None,
            )
            .unwrap();
        let e = f.render(&RenderData::new(&n)).unwrap_err();
        assert!(e.contains("mine.tmpl:3:"), "{e}");
        let e = set
            .compile("r/slack[0] title", "ok\n{{ .Status", Escape::None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("r/slack[0] title") && e.contains(":2:"), "{e}");
        let e = TemplateSet::new(&[("broken.tmpl".into(), "{{ define \"x\" }}".into())])
            .unwrap_err()
            .to_string();
        assert!(e.contains("broken.tmpl"), "{e}");
    }
}

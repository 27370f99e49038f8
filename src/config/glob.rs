//! Just enough of Go's `filepath.Glob` for Alertmanager's `templates:` patterns: `*`, `?` and
//! `[...]` classes in any path component; a pattern without matches is not an error.

use std::path::{Component, Path, PathBuf};

/// Files matching `pattern` (relative patterns are taken from `base`), sorted.
pub fn glob(pattern: &str, base: &Path) -> Vec<PathBuf> {
    let p = Path::new(pattern);
    let mut current: Vec<PathBuf> = vec![if p.is_absolute() {
        PathBuf::new()
    } else {
        base.to_path_buf()
    }];
    for comp in p.components() {
        let mut next = Vec::new();
        match comp {
            Component::Normal(c) => {
                let c = c.to_string_lossy();
                if has_meta(&c) {
                    for dir in &current {
                        let dir_to_read = if dir.as_os_str().is_empty() {
                            Path::new(".")
                        } else {
                            dir.as_path()
                        };
                        let Ok(entries) = std::fs::read_dir(dir_to_read) else {
                            continue;
                        };
                        let mut names: Vec<String> = entries
                            .filter_map(Result::ok)
                            .map(|e| e.file_name().to_string_lossy().into_owned())
                            .filter(|n| wildcard_match(&c, n))
                            .collect();
                        names.sort();
                        next.extend(names.into_iter().map(|n| dir.join(n)));
                    }
                } else {
                    next.extend(current.iter().map(|d| d.join(c.as_ref())));
                }
            }
            other => next.extend(current.iter().map(|d| d.join(other.as_os_str()))),
        }
        current = next;
        if current.is_empty() {
            break;
        }
    }
    current.retain(|p| p.is_file());
    current
}

fn has_meta(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Go's `filepath.Match` for one path component.
pub fn wildcard_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Iterative matcher with backtracking to the last `*`.
    let (mut pi, mut ni) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    star = Some((pi, ni));
                    pi += 1;
                    continue;
                }
                '?' => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                '[' => {
                    if let Some((matched, len)) = class_match(&p[pi..], n[ni]) {
                        if matched {
                            pi += len;
                            ni += 1;
                            continue;
                        }
                    } else if n[ni] == '[' {
                        pi += 1;
                        ni += 1;
                        continue;
                    }
                }
                '\\' if pi + 1 < p.len() && p[pi + 1] == n[ni] => {
                    pi += 2;
                    ni += 1;
                    continue;
                }
                '\\' if pi + 1 < p.len() => {}
                c if c == n[ni] => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, sn)) => {
                pi = sp + 1;
                ni = sn + 1;
                star = Some((sp, sn + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Matches `c` against a `[...]` class at the start of `p`; `None` when the class is unclosed.
/// Returns whether it matched and the class's length in characters.
fn class_match(p: &[char], c: char) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(p.get(i), Some('^' | '!'));
    if negate {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    loop {
        let ch = *p.get(i)?;
        if ch == ']' && !first {
            return Some((hit != negate, i + 1));
        }
        first = false;
        let lo = ch;
        if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|&h| h != ']') {
            let hi = p[i + 2];
            if lo <= c && c <= hi {
                hit = true;
            }
            i += 3;
        } else {
            if lo == c {
                hit = true;
            }
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard_match("*.tmpl", "a.tmpl"));
        assert!(wildcard_match("*.tmpl", ".tmpl"));
        assert!(!wildcard_match("*.tmpl", "a.tmpl.bak"));
        assert!(wildcard_match("a?c", "abc"));
        assert!(!wildcard_match("a?c", "ac"));
        assert!(wildcard_match("*", "anything"));
        assert!(wildcard_match("[ab]*", "beta"));
        assert!(!wildcard_match("[!ab]*", "beta"));
        assert!(wildcard_match("x[0-9]", "x7"));
        assert!(wildcard_match("a*b*c", "aXXbYYc"));
        assert!(!wildcard_match("a*b*c", "aXXbYY"));
    }

    #[test]
    fn globbing_files() {
        let dir = std::env::temp_dir().join(format!("klaxon-glob-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("t")).unwrap();
        std::fs::write(dir.join("t/b.tmpl"), "b").unwrap();
        std::fs::write(dir.join("t/a.tmpl"), "a").unwrap();
        std::fs::write(dir.join("t/c.txt"), "c").unwrap();
        let got = glob("t/*.tmpl", &dir);
        assert_eq!(got, vec![dir.join("t/a.tmpl"), dir.join("t/b.tmpl")]);
        assert_eq!(glob("*/a.tmpl", &dir), vec![dir.join("t/a.tmpl")]);
        assert!(glob("/nonexistent-klaxon/*.tmpl", &dir).is_empty());
        assert_eq!(glob("t/c.txt", &dir), vec![dir.join("t/c.txt")]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

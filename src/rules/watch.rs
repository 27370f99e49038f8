//! Watches rule files and directories and signals when a reload is due.
//!
//! Directories are watched, not files: an editor's atomic save (write a temp file, rename it over
//! the original), a directory rename and a Kubernetes ConfigMap update (the `..data` symlink is
//! swapped to a new timestamped directory) all replace the watched inode, which a file watch would
//! lose. Events are debounced (~250 ms) so one save triggers one reload. A rule path is watched
//! through itself when it is a directory, through its parent otherwise (missing paths included, so
//! creating the file is seen); [`RuleWatcher::refresh`] adds watches for paths that appeared later.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::RecursiveMode;
use notify_debouncer_full::{
    DebounceEventResult, Debouncer, RecommendedCache, new_debouncer, notify::RecommendedWatcher,
};

/// How long the watcher waits for a burst of file events to settle.
pub const DEBOUNCE: Duration = Duration::from_millis(250);

/// Why the file watcher could not start.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The OS watcher failed.
    #[error("watching rule files: {0}")]
    Notify(#[from] notify::Error),
}

/// A running watcher; dropping it stops watching.
pub struct RuleWatcher {
    debouncer: Debouncer<RecommendedWatcher, RecommendedCache>,
    paths: Vec<PathBuf>,
    watched: BTreeSet<(PathBuf, bool)>,
}

impl std::fmt::Debug for RuleWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleWatcher")
            .field("paths", &self.paths)
            .field("watched", &self.watched)
            .finish_non_exhaustive()
    }
}

/// The directory to watch for `p` and whether recursively: a directory itself (recursive), else
/// its nearest existing ancestor (non-recursive).
fn target(p: &Path) -> Option<(PathBuf, bool)> {
    if p.is_dir() {
        return Some((p.to_path_buf(), true));
    }
    let mut dir = p.parent()?;
    loop {
        let d = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if d.is_dir() {
            return Some((d.to_path_buf(), false));
        }
        dir = dir.parent()?;
    }
}

/// Whether an event at `changed` can affect the rule path `rule`.
fn relevant(rule: &Path, changed: &Path) -> bool {
    changed.starts_with(rule)
        || rule.starts_with(changed)
        || changed
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(".."))
}

impl RuleWatcher {
    /// Starts watching `paths`; `on_change` runs (on the watcher's thread) after each settled burst
    /// of relevant events.
    pub fn start(
        paths: Vec<PathBuf>,
        on_change: impl Fn() + Send + 'static,
    ) -> Result<RuleWatcher, WatchError> {
        let abs: Vec<PathBuf> = paths
            .iter()
            .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone()))
            .collect();
        let filter = abs.clone();
        let debouncer = new_debouncer(DEBOUNCE, None, move |res: DebounceEventResult| {
            let Ok(events) = res else {
                on_change();
                return;
            };
            let hit = events.iter().any(|e| {
                e.paths
                    .iter()
                    .any(|c| filter.iter().any(|r| relevant(r, c)))
            });
            if hit {
                on_change();
            }
        })?;
        let mut w = RuleWatcher {
            debouncer,
            paths: abs,
            watched: BTreeSet::new(),
        };
        w.refresh();
        Ok(w)
    }

    /// Adds watches for rule paths whose best watch target changed (e.g. a directory created since).
    pub fn refresh(&mut self) {
        let targets: BTreeSet<(PathBuf, bool)> =
            self.paths.iter().filter_map(|p| target(p)).collect();
        for t in &targets {
            if self.watched.contains(t) {
                continue;
            }
            let mode = if t.1 {
                RecursiveMode::Recursive
            } else {
                RecursiveMode::NonRecursive
            };
            match self.debouncer.watch(&t.0, mode) {
                Ok(()) => {
                    self.watched.insert(t.clone());
                }
                Err(e) => tracing::warn!(event_type = "error", path = %t.0.display(), error = %e,
                    "cannot watch rule path; SIGHUP or POST /-/reload still reload"),
            }
        }
        let stale: Vec<(PathBuf, bool)> = self.watched.difference(&targets).cloned().collect();
        for t in stale {
            let _ = self.debouncer.unwatch(&t.0);
            self.watched.remove(&t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relevance() {
        let r = Path::new("/etc/rules");
        assert!(relevant(r, Path::new("/etc/rules/a.yml")));
        assert!(relevant(r, Path::new("/etc")));
        assert!(relevant(
            Path::new("/etc/rules/a.yml"),
            Path::new("/etc/rules/..data")
        ));
        assert!(!relevant(
            Path::new("/etc/rules/a.yml"),
            Path::new("/etc/rules/b.yml")
        ));
    }

    #[test]
    fn targets() {
        let dir = std::env::temp_dir();
        assert_eq!(target(&dir), Some((dir.clone(), true)));
        let missing = dir.join("klaxon-no-such-dir").join("x.yml");
        assert_eq!(target(&missing), Some((dir, false)));
    }
}

//! Silences with Alertmanager's semantics (`silence/silence.go` and the v2 API handler):
//! validation, update in place versus expire-and-recreate, states, retention, anchored regexes.
//!
//! One deliberate difference: a silence whose `endsAt` equals now counts as expired (the end is
//! exclusive), so expiring a silence takes effect at the instant it is expired rather than one
//! nanosecond later.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::api_types::{PostableMatcher, PostableSilence};
use super::dispatcher::DispatchError;
use crate::model::{Labels, MatchOp, Matcher};
use crate::telemetry::time::format_rfc3339_ms;

/// Expired silences are kept this long after their end (Alertmanager's `--data.retention`).
pub const SILENCE_RETENTION_MS: i64 = 120 * 3_600_000;
/// Most silences kept at once (active, pending and retained expired ones), bounding API-driven
/// state.
pub const MAX_SILENCES: usize = 10_000;
/// Most matchers per silence.
pub const MAX_MATCHERS: usize = 64;

/// Where a silence is in its life at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SilenceState {
    /// Mutes matching alerts now.
    Active,
    /// Starts later.
    Pending,
    /// Ended.
    Expired,
}

impl SilenceState {
    /// The API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SilenceState::Active => "active",
            SilenceState::Pending => "pending",
            SilenceState::Expired => "expired",
        }
    }
}

/// One matcher as the API writes it; kept verbatim so updates compare like Alertmanager's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SilenceMatcher {
    /// Label name.
    pub name: String,
    /// Value or regex source.
    pub value: String,
    /// `=~` / `!~`.
    pub is_regex: bool,
    /// `=` / `=~` rather than `!=` / `!~`.
    pub is_equal: bool,
}

impl SilenceMatcher {
    fn op(&self) -> MatchOp {
        match (self.is_equal, self.is_regex) {
            (true, false) => MatchOp::Equal,
            (false, false) => MatchOp::NotEqual,
            (true, true) => MatchOp::Regex,
            (false, true) => MatchOp::NotRegex,
        }
    }

    /// Alertmanager's `matchesEmpty`: only `=` and `=~` count; negative matchers never do.
    fn matches_empty(&self, compiled: &Matcher) -> bool {
        self.is_equal && compiled.matches("")
    }
}

/// A stored silence.
#[derive(Debug, Clone)]
pub struct Silence {
    /// UUID-shaped id.
    pub id: String,
    /// Matchers as posted.
    pub matchers: Vec<SilenceMatcher>,
    compiled: Vec<Matcher>,
    /// Start (ms).
    pub starts_at: i64,
    /// End (ms, exclusive).
    pub ends_at: i64,
    /// Last change (ms).
    pub updated_at: i64,
    /// Author.
    pub created_by: String,
    /// Why.
    pub comment: String,
}

impl Silence {
    /// The state at `now`.
    pub fn state(&self, now: i64) -> SilenceState {
        if now < self.starts_at {
            SilenceState::Pending
        } else if now >= self.ends_at {
            SilenceState::Expired
        } else {
            SilenceState::Active
        }
    }

    /// Whether every matcher matches `labels` (a missing label matches as "").
    pub fn matches(&self, labels: &Labels) -> bool {
        self.compiled.iter().all(|m| m.matches_labels(labels))
    }

    /// The v2 API's `gettableSilence`.
    pub fn to_json(&self, now: i64) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "matchers": self.matchers.iter().map(|m| serde_json::json!({
                "name": m.name,
                "value": m.value,
                "isRegex": m.is_regex,
                "isEqual": m.is_equal,
            })).collect::<Vec<_>>(),
            "startsAt": format_rfc3339_ms(self.starts_at),
            "endsAt": format_rfc3339_ms(self.ends_at),
            "updatedAt": format_rfc3339_ms(self.updated_at),
            "createdBy": self.created_by,
            "comment": self.comment,
            "status": {"state": self.state(now).as_str()},
        })
    }

    /// Alertmanager's filter on `GET /silences`: every filter matcher appears verbatim (name,
    /// operator, value) among the silence's matchers.
    pub fn has_matchers(&self, filter: &[Matcher]) -> bool {
        filter.iter().all(|f| {
            self.matchers
                .iter()
                .any(|m| m.name == f.name && m.op() == f.op && m.value == f.value)
        })
    }
}

/// Plain-data silence for snapshots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SilenceSnapshot {
    /// Id.
    pub id: String,
    /// Matchers.
    pub matchers: Vec<SilenceMatcher>,
    /// Start (ms).
    pub starts_at: i64,
    /// End (ms).
    pub ends_at: i64,
    /// Last change (ms).
    pub updated_at: i64,
    /// Author.
    pub created_by: String,
    /// Why.
    pub comment: String,
}

/// Every silence by id.
#[derive(Debug, Clone, Default)]
pub struct Silences {
    by_id: BTreeMap<String, Silence>,
    seq: u64,
}

fn invalid(field: &str, message: impl Into<String>) -> DispatchError {
    DispatchError::Invalid {
        field: field.to_string(),
        message: message.into(),
    }
}

fn compile(
    matchers: &[PostableMatcher],
) -> Result<(Vec<SilenceMatcher>, Vec<Matcher>), DispatchError> {
    if matchers.is_empty() {
        return Err(invalid("matchers", "at least one matcher required"));
    }
    if matchers.len() > MAX_MATCHERS {
        return Err(invalid(
            "matchers",
            format!("at most {MAX_MATCHERS} matchers are allowed"),
        ));
    }
    let mut raw = Vec::with_capacity(matchers.len());
    let mut compiled = Vec::with_capacity(matchers.len());
    let mut all_match_empty = true;
    for (i, m) in matchers.iter().enumerate() {
        let field = format!("matchers[{i}]");
        if m.name.is_empty() {
            return Err(invalid(&field, "invalid label name \"\""));
        }
        let sm = SilenceMatcher {
            name: m.name.clone(),
            value: m.value.clone(),
            is_regex: m.is_regex,
            is_equal: m.is_equal,
        };
        let c = Matcher::new(sm.op(), &sm.name, &sm.value).map_err(|e| {
            let text = e.source.to_string();
            let why = text
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim()
                .trim_start_matches("error: ");
            invalid(
                &field,
                format!("invalid regular expression {:?}: {why}", sm.value),
            )
        })?;
        all_match_empty &= sm.matches_empty(&c);
        raw.push(sm);
        compiled.push(c);
    }
    if all_match_empty {
        return Err(invalid(
            "matchers",
            "at least one matcher must not match the empty string",
        ));
    }
    Ok((raw, compiled))
}

impl Silences {
    /// No silences.
    pub fn new() -> Self {
        Self::default()
    }

    /// Creates or updates a silence as `POST /api/v2/silences` does; returns its id (a new one
    /// when the change would rewrite history: the old silence is then expired).
    pub fn set(&mut self, s: PostableSilence, now: i64) -> Result<String, DispatchError> {
        if s.starts_at >= s.ends_at {
            return Err(invalid("endsAt", "start time must be before end time"));
        }
        if s.ends_at < now {
            return Err(invalid("endsAt", "end time can't be in the past"));
        }
        let (matchers, compiled) = compile(&s.matchers)?;
        let prev_id = s.id.filter(|id| !id.is_empty());
        let prev = match &prev_id {
            Some(id) => Some(
                self.by_id
                    .get(id)
                    .ok_or_else(|| DispatchError::NotFound(format!("silence {id}")))?
                    .clone(),
            ),
            None => None,
        };
        let mut new = Silence {
            id: String::new(),
            matchers,
            compiled,
            starts_at: s.starts_at,
            ends_at: s.ends_at,
            updated_at: now,
            created_by: s.created_by,
            comment: s.comment,
        };
        if let Some(p) = &prev
            && can_update(p, &new, now)
        {
            new.id.clone_from(&p.id);
            self.by_id.insert(new.id.clone(), new);
            return Ok(p.id.clone());
        }
        if self.by_id.len() >= MAX_SILENCES {
            return Err(invalid(
                "silence",
                format!("too many silences (limit {MAX_SILENCES})"),
            ));
        }
        new.id = self.next_id(&new, now);
        new.starts_at = new.starts_at.max(now);
        if let Some(p) = prev
            && p.state(now) != SilenceState::Expired
        {
            self.expire(&p.id, now)?;
        }
        let id = new.id.clone();
        self.by_id.insert(id.clone(), new);
        Ok(id)
    }

    /// Ends a silence now (a pending one never starts); expiring an expired silence is a no-op,
    /// as in current Alertmanager.
    pub fn expire(&mut self, id: &str, now: i64) -> Result<(), DispatchError> {
        let s = self
            .by_id
            .get_mut(id)
            .ok_or_else(|| DispatchError::NotFound(format!("silence {id}")))?;
        match s.state(now) {
            SilenceState::Expired => return Ok(()),
            SilenceState::Active => s.ends_at = now,
            SilenceState::Pending => {
                s.starts_at = now;
                s.ends_at = now;
            }
        }
        s.updated_at = now;
        Ok(())
    }

    /// One silence.
    pub fn get(&self, id: &str) -> Option<&Silence> {
        self.by_id.get(id)
    }

    /// Every silence, in id order.
    pub fn iter(&self) -> impl Iterator<Item = &Silence> {
        self.by_id.values()
    }

    /// Silences active at `now`.
    pub fn active(&self, now: i64) -> Vec<&Silence> {
        self.by_id
            .values()
            .filter(|s| s.state(now) == SilenceState::Active)
            .collect()
    }

    /// Number of silences in `state` at `now`.
    pub fn count(&self, state: SilenceState, now: i64) -> usize {
        self.by_id
            .values()
            .filter(|s| s.state(now) == state)
            .count()
    }

    /// Drops silences that ended more than the retention ago.
    pub fn gc(&mut self, now: i64) {
        self.by_id
            .retain(|_, s| s.ends_at.saturating_add(SILENCE_RETENTION_MS) > now);
    }

    /// The API listing: active (soonest end first), pending (soonest start first), expired
    /// (latest end first), filtered like Alertmanager's `filter=` on silences.
    pub fn list_json(&self, filter: &[Matcher], now: i64) -> serde_json::Value {
        let mut v: Vec<&Silence> = self
            .by_id
            .values()
            .filter(|s| s.has_matchers(filter))
            .collect();
        v.sort_by(|a, b| {
            let (sa, sb) = (a.state(now), b.state(now));
            sa.cmp(&sb).then_with(|| match sa {
                SilenceState::Active => a.ends_at.cmp(&b.ends_at),
                SilenceState::Pending => a.starts_at.cmp(&b.starts_at),
                SilenceState::Expired => b.ends_at.cmp(&a.ends_at),
            })
        });
        serde_json::Value::Array(v.into_iter().map(|s| s.to_json(now)).collect())
    }

    /// Plain data for persistence.
    pub fn snapshot(&self) -> Vec<SilenceSnapshot> {
        self.by_id
            .values()
            .map(|s| SilenceSnapshot {
                id: s.id.clone(),
                matchers: s.matchers.clone(),
                starts_at: s.starts_at,
                ends_at: s.ends_at,
                updated_at: s.updated_at,
                created_by: s.created_by.clone(),
                comment: s.comment.clone(),
            })
            .collect()
    }

    /// Adds snapshot silences; one whose matchers no longer compile is dropped, and a newer
    /// local version of the same id wins (Alertmanager's merge by `updatedAt`).
    pub fn restore(&mut self, snap: Vec<SilenceSnapshot>) {
        for s in snap {
            let Ok(compiled) = s
                .matchers
                .iter()
                .map(|m| Matcher::new(m.op(), &m.name, &m.value))
                .collect::<Result<Vec<_>, _>>()
            else {
                continue;
            };
            if self
                .by_id
                .get(&s.id)
                .is_some_and(|cur| cur.updated_at >= s.updated_at)
            {
                continue;
            }
            self.by_id.insert(
                s.id.clone(),
                Silence {
                    id: s.id,
                    matchers: s.matchers,
                    compiled,
                    starts_at: s.starts_at,
                    ends_at: s.ends_at,
                    updated_at: s.updated_at,
                    created_by: s.created_by,
                    comment: s.comment,
                },
            );
        }
    }

    /// A UUID-shaped id derived from the content, the time and a counter: unique in practice,
    /// and reproducible in tests without a random source.
    fn next_id(&mut self, s: &Silence, now: i64) -> String {
        loop {
            self.seq += 1;
            let mut text = format!("{now}\u{1}{}\u{1}{}", self.seq, self.by_id.len());
            for m in &s.matchers {
                text.push_str(&format!("\u{1}{}{}{}", m.name, m.op().as_str(), m.value));
            }
            text.push('\u{1}');
            text.push_str(&s.created_by);
            let hi = fnv(0xcbf2_9ce4_8422_2325, text.as_bytes());
            let lo = fnv(0x8422_2325_cbf2_9ce4, text.as_bytes());
            let id = uuid_v4_shape(hi, lo);
            if !self.by_id.contains_key(&id) {
                return id;
            }
        }
    }
}

fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Formats 128 bits as a version-4, variant-1 UUID.
fn uuid_v4_shape(hi: u64, lo: u64) -> String {
    let hi = (hi & !0xf000) | 0x4000;
    let lo = (lo & !(0xc000 << 48)) | (0x8000 << 48);
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0xffff,
        lo >> 48,
        lo & 0xffff_ffff_ffff
    )
}

/// Alertmanager's `canUpdate`: same matchers, and the change does not rewrite what the silence
/// already did (an active silence keeps its start and may not end in the past; a pending one may
/// not start in the past; an expired one never changes).
fn can_update(a: &Silence, b: &Silence, now: i64) -> bool {
    if a.matchers != b.matchers {
        return false;
    }
    match a.state(now) {
        SilenceState::Active => a.starts_at / 1000 == b.starts_at / 1000 && b.ends_at >= now,
        SilenceState::Pending => b.starts_at >= now,
        SilenceState::Expired => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str, value: &str, is_regex: bool, is_equal: bool) -> PostableMatcher {
        PostableMatcher {
            name: name.into(),
            value: value.into(),
            is_regex,
            is_equal,
        }
    }

    fn post(id: Option<&str>, ms: Vec<PostableMatcher>, start: i64, end: i64) -> PostableSilence {
        PostableSilence {
            id: id.map(str::to_string),
            matchers: ms,
            starts_at: start,
            ends_at: end,
            created_by: "me".into(),
            comment: "c".into(),
        }
    }

    #[test]
    fn regex_matchers_are_anchored() {
        let mut s = Silences::new();
        let id = s
            .set(post(None, vec![m("foo", "bar", true, true)], 0, 100), 0)
            .unwrap();
        let sil = s.get(&id).unwrap();
        assert!(sil.matches(&Labels::from_pairs([("foo", "bar")])));
        assert!(!sil.matches(&Labels::from_pairs([("foo", "foobar")])));
    }

    #[test]
    fn validation_follows_alertmanager() {
        let mut s = Silences::new();
        let e = s.set(post(None, vec![], 0, 100), 0).unwrap_err();
        assert!(e.to_string().contains("at least one matcher"), "{e}");
        let e = s
            .set(post(None, vec![m("a", "", false, true)], 0, 100), 0)
            .unwrap_err();
        assert!(e.to_string().contains("empty string"), "{e}");
        let e = s
            .set(post(None, vec![m("a", "(", true, true)], 0, 100), 0)
            .unwrap_err();
        assert!(e.to_string().contains("matchers[0]"), "{e}");
        let e = s
            .set(post(None, vec![m("a", "b", false, true)], 100, 100), 0)
            .unwrap_err();
        assert!(e.to_string().contains("start time must be before end time"));
        let e = s
            .set(post(None, vec![m("a", "b", false, true)], 0, 50), 60)
            .unwrap_err();
        assert!(e.to_string().contains("in the past"));
        // A negative matcher alone is accepted, as in Alertmanager.
        assert!(
            s.set(post(None, vec![m("a", "b", false, false)], 0, 100), 0)
                .is_ok()
        );
        let e = s
            .set(
                post(Some("nope"), vec![m("a", "b", false, true)], 0, 100),
                0,
            )
            .unwrap_err();
        assert!(matches!(e, DispatchError::NotFound(_)));
    }

    #[test]
    fn update_in_place_or_expire_and_recreate() {
        let mut s = Silences::new();
        let id = s
            .set(post(None, vec![m("a", "b", false, true)], 0, 1_000), 10)
            .unwrap();
        assert_eq!(s.get(&id).unwrap().starts_at, 10, "start clamped to now");
        // Extending an active silence keeps its id.
        let same = s
            .set(
                post(Some(&id), vec![m("a", "b", false, true)], 10, 5_000),
                20,
            )
            .unwrap();
        assert_eq!(same, id);
        assert_eq!(s.get(&id).unwrap().ends_at, 5_000);
        // Changing matchers expires the old one and creates a new one.
        let new = s
            .set(
                post(Some(&id), vec![m("a", "c", false, true)], 10, 5_000),
                30,
            )
            .unwrap();
        assert_ne!(new, id);
        assert_eq!(s.get(&id).unwrap().state(30), SilenceState::Expired);
        assert_eq!(s.get(&new).unwrap().state(30), SilenceState::Active);
        // Expire is idempotent; unknown ids are not found.
        s.expire(&new, 40).unwrap();
        s.expire(&new, 50).unwrap();
        assert!(matches!(s.expire("x", 50), Err(DispatchError::NotFound(_))));
        s.gc(40 + SILENCE_RETENTION_MS);
        assert!(s.get(&new).is_none());
    }

    #[test]
    fn ids_look_like_uuids() {
        let id = uuid_v4_shape(u64::MAX, 0);
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_eq!(&id[19..20], "8");
    }
}

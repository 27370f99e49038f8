-- klaxon durable state, schema version 1 (SQLite). Applied by sqlx's migrator at start-up;
-- never edit an applied migration: add 0002_*.sql instead (its checksum is verified).

-- Key/value facts about the store itself (last snapshot time).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

-- Rule groups: the last evaluation before the snapshot ("down at" for `for` restoration).
CREATE TABLE rule_groups (
    file         TEXT NOT NULL,
    name         TEXT NOT NULL,
    last_eval_ms INTEGER,
    PRIMARY KEY (file, name)
);

-- Alert instances of alerting rules: pending, firing and retained resolved alerts.
-- A rule is identified by file, group, name, a hash of its label templates and its ordinal among
-- rules with the same identity in the group (the reload carry-over rule).
CREATE TABLE alert_instances (
    rule_file         TEXT NOT NULL,
    rule_group        TEXT NOT NULL,
    rule_name         TEXT NOT NULL,
    rule_labels_hash  TEXT NOT NULL,
    rule_ordinal      INTEGER NOT NULL,
    labels            TEXT NOT NULL,  -- JSON object
    fingerprint       TEXT NOT NULL,
    annotations       TEXT NOT NULL,  -- JSON object
    state             TEXT NOT NULL,  -- inactive | pending | firing
    active_at         INTEGER NOT NULL,
    fired_at          INTEGER,
    resolved_at       INTEGER,
    keep_firing_since INTEGER,
    last_sent_at      INTEGER,
    valid_until       INTEGER,
    value             TEXT NOT NULL,  -- JSON: {"f": number|null} or {"s": string}
    PRIMARY KEY (rule_file, rule_group, rule_name, rule_labels_hash, rule_ordinal, labels)
);
CREATE INDEX alert_instances_fingerprint ON alert_instances (fingerprint);

-- Silences (expired ones within retention included).
CREATE TABLE silences (
    id         TEXT PRIMARY KEY NOT NULL,
    matchers   TEXT NOT NULL,  -- JSON array of {name, value, is_regex, is_equal}
    starts_at  INTEGER NOT NULL,
    ends_at    INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    comment    TEXT NOT NULL
);

-- Acknowledgements in force.
CREATE TABLE acks (
    fingerprint TEXT PRIMARY KEY NOT NULL,
    labels      TEXT NOT NULL,  -- JSON object
    acked_by    TEXT NOT NULL,
    comment     TEXT NOT NULL,
    at_ms       INTEGER NOT NULL
);

-- The notification log: what each integration was last told about each group.
CREATE TABLE nflog (
    group_key   TEXT NOT NULL,
    integration TEXT NOT NULL,
    firing      TEXT NOT NULL,  -- JSON arrays of 16-hex fingerprints
    resolved    TEXT NOT NULL,
    related     TEXT NOT NULL,
    owed        TEXT NOT NULL,
    ts          INTEGER NOT NULL,
    expires     INTEGER NOT NULL,
    void        INTEGER NOT NULL,
    PRIMARY KEY (group_key, integration)
);

-- Opaque dispatcher sections as JSON: `alerts`, `escalation` (progress and lapsed acks), `groups`.
CREATE TABLE dispatch_state (
    section  TEXT PRIMARY KEY NOT NULL,
    body     TEXT NOT NULL,
    saved_ms INTEGER NOT NULL
);

-- Notifications handed to the notifier and not yet settled. A row is written before the
-- notification is submitted; a failed send deletes it; a delivered one is marked (delivered_seq)
-- and kept as a journal entry until a snapshot containing its notification-log record commits.
CREATE TABLE outbox (
    integration   TEXT NOT NULL,
    group_key     TEXT NOT NULL,
    flush_ms      INTEGER NOT NULL,
    receiver      TEXT NOT NULL,
    notification  TEXT NOT NULL,  -- JSON
    created_ms    INTEGER NOT NULL,
    delivered_seq INTEGER,
    delivered_ms  INTEGER,
    PRIMARY KEY (integration, group_key, flush_ms)
);

-- Alert state changes and notification attempts, pruned by --history-retention.
CREATE TABLE history (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    time_ms     INTEGER NOT NULL,
    kind        TEXT NOT NULL,  -- alert | notification
    source      TEXT NOT NULL,  -- rule | dispatcher | notifier
    alertname   TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    labels      TEXT NOT NULL,  -- JSON object
    from_state  TEXT,
    to_state    TEXT,
    integration TEXT,
    receiver    TEXT,
    channel     TEXT,
    group_key   TEXT,
    outcome     TEXT,           -- success | failure | unconfigured | dropped
    error       TEXT,
    attempts    INTEGER
);
CREATE INDEX history_time ON history (time_ms);
CREATE INDEX history_alertname ON history (alertname, time_ms);
CREATE INDEX history_fingerprint ON history (fingerprint, time_ms);

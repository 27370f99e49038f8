//! Alert delivery's decision half: which alerts reach which receiver, when, and how often
//! (Alertmanager's alert store, routing, aggregation groups, notification log, inhibition,
//! silences) plus klaxon's escalation, acknowledgements and incident correlation.

pub mod alert;
pub mod notification;

pub use alert::{Alert, Fingerprint, fingerprint};
pub use notification::{EscalationInfo, Notification};

//! Alert delivery's decision half: which alerts reach which receiver, when, and how often
//! (Alertmanager's alert store, routing, aggregation groups, notification log, inhibition,
//! silences) plus klaxon's escalation, acknowledgements and incident correlation.

pub mod alert;
pub mod api_types;
pub mod correlate;
pub mod dispatcher;
pub mod escalation;
pub mod group;
pub mod inhibit;
pub mod nflog;
pub mod notification;
pub mod silence;
pub mod store;

pub use alert::{Alert, Fingerprint, RuleMeta, fingerprint};
pub use api_types::{
    AlertFilter, DispatchStats, PostableMatcher, PostableSilence, PostedAlert, UndeliveredSummary,
};
pub use correlate::{Incident, incidents, symptom_roots};
pub use dispatcher::{
    Dispatch, DispatchError, DispatchSnapshot, Dispatcher, GroupStateSnapshot, StatusChange,
};
pub use escalation::{
    Ack, AckError, DueStep, EscalationDue, EscalationProgress, EscalationSnapshot, Escalations,
};
pub use notification::{EscalationInfo, Notification};
pub use silence::SilenceState;

//! Alert delivery's sending half: channels (email, Slack, webhooks), retries, rate limits and
//! message templates with Alertmanager's data.

//! Per-request bounds, so one pusher cannot exhaust memory or create absurd series.

/// Size and shape limits every decoder enforces; `Default` gives the documented values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Raw request body, before any decompression (16 MiB).
    pub max_body_bytes: usize,
    /// Body after gzip / snappy decompression (64 MiB).
    pub max_decompressed_bytes: usize,
    /// Samples in one request (1 000 000).
    pub max_samples: usize,
    /// Labels of one series, `__name__` included (64).
    pub max_labels_per_series: usize,
    /// Bytes in one label name (256).
    pub max_label_name_len: usize,
    /// Bytes in one label value, metric name included (4096).
    pub max_label_value_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 16 << 20,
            max_decompressed_bytes: 64 << 20,
            max_samples: 1_000_000,
            max_labels_per_series: 64,
            max_label_name_len: 256,
            max_label_value_len: 4096,
        }
    }
}

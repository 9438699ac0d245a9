//! Check status with Consul's semantics and its aggregate order.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A check's (or an instance's aggregate) status. Ordered from best to worst, so the
/// aggregate of several is their maximum: maintenance > critical > warning > passing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Passing,
    Warning,
    Critical,
    Maintenance,
}

impl Status {
    /// The aggregate of many statuses; `Passing` when there are none (a service with
    /// no checks is healthy, as in Consul).
    pub fn aggregate(statuses: impl IntoIterator<Item = Status>) -> Status {
        statuses.into_iter().max().unwrap_or(Status::Passing)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Passing => "passing",
            Status::Warning => "warning",
            Status::Critical => "critical",
            Status::Maintenance => "maintenance",
        }
    }

    /// Parses Consul's spelling (`passing`, `warning`, `critical`, `maintenance`).
    pub fn parse(s: &str) -> Option<Status> {
        match s {
            "passing" => Some(Status::Passing),
            "warning" => Some(Status::Warning),
            "critical" => Some(Status::Critical),
            "maintenance" => Some(Status::Maintenance),
            _ => None,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Status::*;
    use super::*;

    #[test]
    fn aggregate_follows_consul_order() {
        assert_eq!(Status::aggregate([]), Passing);
        assert_eq!(Status::aggregate([Passing, Warning]), Warning);
        assert_eq!(Status::aggregate([Warning, Critical, Passing]), Critical);
        assert_eq!(Status::aggregate([Critical, Maintenance]), Maintenance);
    }
}

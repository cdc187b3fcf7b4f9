//! The delivery guarantee an export gives its readers, shared by sinks, options and
//! manifests.

use serde::{Deserialize, Serialize};

/// What a reader of the destination is guaranteed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Delivery {
    /// Each chunk is one transaction: a `read_committed` reader of the manifest's ranges
    /// sees every committed chunk once and nothing of failed or interrupted attempts.
    ExactlyOnce,
    /// No transactions: a failed or interrupted attempt can leave messages inside the
    /// manifest's ranges; only readers that skip attempts the manifest does not name (by the
    /// `ldd-attempt` header, as `ldd consume` does) read exactly the dataset.
    #[default]
    AtLeastOnce,
}

impl Delivery {
    /// The name used in flags, requests and manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::ExactlyOnce => "exactly-once",
            Delivery::AtLeastOnce => "at-least-once",
        }
    }
}

impl std::fmt::Display for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Delivery {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "exactly-once" => Ok(Delivery::ExactlyOnce),
            "at-least-once" => Ok(Delivery::AtLeastOnce),
            other => Err(format!(
                "unknown delivery `{other}` (exactly-once or at-least-once)"
            )),
        }
    }
}

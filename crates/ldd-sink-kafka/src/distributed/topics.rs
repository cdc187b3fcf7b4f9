//! The two topics of a worker group, named after the group.

use crate::admin::TopicAdmin;
use crate::config::validate_topic_name;
use crate::error::{Error, Result};

/// Task partitions of a new tasks topic: the most workers that can share one export's
/// chunks. 24 divides evenly among 1, 2, 3, 4, 6, 8, 12 and 24 workers.
pub const DEFAULT_TASK_PARTITIONS: u32 = 24;

/// The topics of group `G`: `ldd.G.tasks` (one message per chunk; the group consumes it)
/// and `ldd.G.results` (one partition: plans, attempt markers and chunk results).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupTopics {
    /// The group (also the consumer group id of its workers).
    pub group: String,
    /// The tasks topic.
    pub tasks: String,
    /// The results topic.
    pub results: String,
}

impl GroupTopics {
    /// The topics of `group`; the group name must be usable in a topic name.
    pub fn new(group: &str) -> Result<Self> {
        if group.is_empty() || group.len() > 200 {
            return Err(Error::Config(
                "a worker group name has 1 to 200 characters".into(),
            ));
        }
        let tasks = format!("ldd.{group}.tasks");
        validate_topic_name(&tasks).map_err(|_| {
            Error::Config(format!(
                "worker group `{}` may only hold letters, digits, `.`, `_` and `-`",
                group.escape_debug()
            ))
        })?;
        Ok(GroupTopics {
            group: group.to_owned(),
            tasks,
            results: format!("ldd.{group}.results"),
        })
    }

    /// Creates the topics when missing (tasks with `task_partitions` partitions, results
    /// with one) and returns the tasks topic's partition count.
    pub async fn ensure(
        &self,
        admin: &TopicAdmin,
        task_partitions: u32,
        replication: u16,
    ) -> Result<u32> {
        let partitions = admin
            .ensure_topic(&self.tasks, Some(task_partitions), replication)
            .await?;
        admin
            .ensure_topic(&self.results, Some(1), replication)
            .await?;
        Ok(partitions)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn topics_are_named_after_the_group_and_bad_names_are_refused() {
        let topics = GroupTopics::new("etl-1").unwrap();
        assert_eq!(topics.tasks, "ldd.etl-1.tasks");
        assert_eq!(topics.results, "ldd.etl-1.results");
        assert!(GroupTopics::new("").is_err());
        let err = GroupTopics::new("a b").unwrap_err();
        assert!(err.to_string().contains("letters, digits"), "{err}");
    }
}

//! What a distributed worker needs to read one chunk of someone else's export: the source,
//! described without secrets ([`TaskSource`]), and a [`SourceResolver`] that turns that
//! description into a [`DataSource`] with the worker's own connection settings.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::dataset::DatasetSpec;
use crate::error::{Error, Result};
use crate::generator::{GeneratorConfig, GeneratorSource};
use crate::source::DataSource;

/// The source of an export as a task carries it: never a URL, password or token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TaskSource {
    /// The synthetic generator, fully described by its configuration.
    Generator {
        /// The generator's settings.
        config: GeneratorConfig,
    },
    /// A dataset of a database the worker knows by name.
    Dataset {
        /// The connection's name in the worker's configuration.
        connection: String,
        /// The dataset (database, table, filters, time range).
        dataset: DatasetSpec,
    },
}

impl TaskSource {
    /// A short description for logs.
    pub fn describe(&self) -> String {
        match self {
            TaskSource::Generator { config } => {
                format!("generator ({} records)", config.records)
            }
            TaskSource::Dataset {
                connection,
                dataset,
            } => format!("{} on connection `{connection}`", dataset.display_name()),
        }
    }
}

/// Opens the source a task names, with the resolver's own configuration.
#[async_trait]
pub trait SourceResolver: Send + Sync {
    /// The source of `task`; an unknown connection is an error that says which name is
    /// missing.
    async fn resolve(&self, task: &TaskSource) -> Result<Arc<dyn DataSource>>;
}

/// Resolves the generator only: a worker without any configured connection.
#[derive(Debug, Clone, Copy, Default)]
pub struct GeneratorResolver;

#[async_trait]
impl SourceResolver for GeneratorResolver {
    async fn resolve(&self, task: &TaskSource) -> Result<Arc<dyn DataSource>> {
        resolve_generator(task).unwrap_or_else(|| {
            Err(Error::InvalidInput(format!(
                "this worker has no connections configured, so it cannot read {}",
                task.describe()
            )))
        })
    }
}

/// The generator of a generator task (validated), `None` for any other task: for resolvers
/// that handle databases themselves.
pub fn resolve_generator(task: &TaskSource) -> Option<Result<Arc<dyn DataSource>>> {
    match task {
        TaskSource::Generator { config } => Some(
            config
                .validate()
                .map(|()| Arc::new(GeneratorSource::new(config.clone())) as Arc<dyn DataSource>),
        ),
        TaskSource::Dataset { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn the_generator_resolves_and_a_dataset_names_what_is_missing() {
        let generator = TaskSource::Generator {
            config: GeneratorConfig {
                records: 5,
                ..Default::default()
            },
        };
        let source = GeneratorResolver.resolve(&generator).await.unwrap();
        assert_eq!(source.count().await.unwrap(), 5);
        let dataset = TaskSource::Dataset {
            connection: "prod-mongo".into(),
            dataset: DatasetSpec::builder("iot", "points").build().unwrap(),
        };
        let err = GeneratorResolver.resolve(&dataset).await.err().unwrap();
        assert!(err.to_string().contains("prod-mongo"), "{err}");
    }

    #[test]
    fn a_task_source_round_trips_through_json() {
        let task = TaskSource::Dataset {
            connection: "c".into(),
            dataset: DatasetSpec::builder("db", "t").build().unwrap(),
        };
        let json = serde_json::to_string(&task).unwrap();
        assert_eq!(serde_json::from_str::<TaskSource>(&json).unwrap(), task);
    }
}

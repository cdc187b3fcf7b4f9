//! One export's checkpoint in the server's state file, as the library's [`CheckpointStore`].
//!
//! The state file is SQLite in WAL mode with `synchronous=NORMAL`: a row is durable once
//! its statement returns, against a killed server (not against a power cut).

use async_trait::async_trait;
use ldd_core::{Checkpoint, CheckpointStore, ChunkManifest, ExportRecord, RunRecord};

use crate::server::store::{Store, StoreError};

/// The checkpoint of export `id`.
pub(crate) struct ServerCheckpoint {
    pub(crate) store: Store,
    pub(crate) id: String,
}

fn checkpoint_error(err: StoreError) -> ldd_core::Error {
    ldd_core::Error::Checkpoint(err.to_string())
}

#[async_trait]
impl CheckpointStore for ServerCheckpoint {
    async fn load(&self) -> ldd_core::Result<Option<Checkpoint>> {
        self.store
            .load_checkpoint(&self.id)
            .await
            .map_err(checkpoint_error)
    }

    async fn save_export(&self, export: &ExportRecord) -> ldd_core::Result<()> {
        self.store
            .save_checkpoint_export(&self.id, export)
            .await
            .map_err(checkpoint_error)
    }

    async fn save_run(&self, run: &RunRecord) -> ldd_core::Result<()> {
        self.store
            .save_checkpoint_run(&self.id, run)
            .await
            .map_err(checkpoint_error)
    }

    async fn save_committing(&self, chunk: &ChunkManifest) -> ldd_core::Result<()> {
        self.store
            .save_checkpoint_chunk(&self.id, chunk, false)
            .await
            .map_err(checkpoint_error)
    }

    async fn save_committed(&self, chunk: &ChunkManifest) -> ldd_core::Result<()> {
        self.store
            .save_checkpoint_chunk(&self.id, chunk, true)
            .await
            .map_err(checkpoint_error)
    }
}

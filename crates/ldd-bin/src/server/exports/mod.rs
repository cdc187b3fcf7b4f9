//! Exports run by the server: the request and status types, validation, the background
//! manager and the runner.

pub(crate) mod handle;
pub(crate) mod job;
pub(crate) mod manager;
pub(crate) mod model;
mod runner;

pub(crate) use job::ExportJob;
pub(crate) use manager::ExportManager;

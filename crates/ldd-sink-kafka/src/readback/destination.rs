//! Where a read-back's records go, as a user names it: a kind of output and a path (a
//! file, a directory for one file per export, or `-` for stdout).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use super::output::{CsvOutput, JsonlOutput, RecordOutput};
#[cfg(feature = "parquet")]
use super::parquet::{ParquetOptions, ParquetOutput};
use crate::error::{Error, Result};

/// What to do with the records read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputKind {
    /// Verify only.
    Discard,
    /// One JSON object per line.
    Jsonl,
    /// CSV with a header row.
    Csv,
    /// Parquet with typed columns, one file per export (feature `parquet`).
    Parquet,
}

impl FromStr for OutputKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "discard" => Ok(OutputKind::Discard),
            "jsonl" => Ok(OutputKind::Jsonl),
            "csv" => Ok(OutputKind::Csv),
            "parquet" => Ok(OutputKind::Parquet),
            other => Err(Error::Config(format!(
                "unknown output format `{other}`; use discard, jsonl, csv or parquet"
            ))),
        }
    }
}

/// An opened output and the file it writes (`None` for stdout).
pub struct OpenedOutput {
    /// Give this to the read-back's hooks.
    pub output: Arc<dyn RecordOutput>,
    /// The file written, when not stdout.
    pub path: Option<PathBuf>,
}

/// Where the records of `export_id` go: `None` for [`OutputKind::Discard`]. `target` is a
/// file, `-` for stdout, or for Parquet a directory (an existing one, or a path ending in
/// `/`), which gets `<export id>.parquet`.
pub fn open_output(
    kind: OutputKind,
    target: &str,
    export_id: &str,
    #[cfg(feature = "parquet")] parquet: ParquetOptions,
) -> Result<Option<OpenedOutput>> {
    if kind == OutputKind::Discard {
        return Ok(None);
    }
    let path = match target {
        "-" => None,
        dir if kind == OutputKind::Parquet && (dir.ends_with('/') || Path::new(dir).is_dir()) => {
            std::fs::create_dir_all(dir)?;
            Some(PathBuf::from(dir).join(format!("{export_id}.parquet")))
        }
        file => Some(PathBuf::from(file)),
    };
    let writer: Box<dyn Write + Send> = match &path {
        None => Box::new(BufWriter::new(std::io::stdout())),
        Some(path) => Box::new(BufWriter::new(File::create(path)?)),
    };
    let output: Arc<dyn RecordOutput> = match kind {
        OutputKind::Jsonl => Arc::new(JsonlOutput::new(writer)),
        OutputKind::Csv => Arc::new(CsvOutput::new(writer)),
        #[cfg(feature = "parquet")]
        OutputKind::Parquet => Arc::new(ParquetOutput::new(writer, parquet)?),
        #[cfg(not(feature = "parquet"))]
        OutputKind::Parquet => {
            return Err(Error::Config(
                "this build has no Parquet output; enable the feature `parquet`".into(),
            ))
        }
        OutputKind::Discard => return Ok(None),
    };
    Ok(Some(OpenedOutput { output, path }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn open(kind: OutputKind, target: &str) -> Result<Option<OpenedOutput>> {
        open_output(
            kind,
            target,
            "e1",
            #[cfg(feature = "parquet")]
            ParquetOptions::default(),
        )
    }

    #[test]
    fn files_directories_and_discard() {
        let dir = std::env::temp_dir().join(format!("ldd-out-{}", uuid::Uuid::new_v4()));
        assert!(open(OutputKind::Discard, "x").unwrap().is_none());
        let file = dir.join("a.jsonl");
        std::fs::create_dir_all(&dir).unwrap();
        let opened = open(OutputKind::Jsonl, file.to_str().unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(opened.path.as_deref(), Some(file.as_path()));
        #[cfg(feature = "parquet")]
        {
            let target = format!("{}/", dir.join("pq").display());
            let opened = open(OutputKind::Parquet, &target).unwrap().unwrap();
            assert_eq!(opened.path, Some(dir.join("pq").join("e1.parquet")));
        }
        assert!("xml".parse::<OutputKind>().is_err());
        assert_eq!("csv".parse::<OutputKind>().unwrap(), OutputKind::Csv);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

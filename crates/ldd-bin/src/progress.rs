//! Progress bars on stderr (hidden when stderr is not a terminal or `--quiet`).

use std::sync::Arc;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ldd_core::{ExportEvent, ExportObserver};

/// A records bar with rate and ETA.
pub(crate) fn records_bar(total: u64, label: &str, quiet: bool) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if quiet {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    let style = ProgressStyle::with_template(
        "{prefix:>9} [{bar:30}] {human_pos}/{human_len} records  {per_sec}  ETA {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(label.to_owned());
    bar
}

/// Feeds export progress events into a bar.
pub(crate) fn export_observer(bar: ProgressBar) -> Arc<dyn ExportObserver> {
    Arc::new(move |event: &ExportEvent| match event {
        ExportEvent::Planned { records, .. } => bar.set_length(*records),
        ExportEvent::Progress(p) => bar.set_position(p.records_done),
        ExportEvent::ChunkRetrying {
            chunk_id,
            attempt,
            error,
        } => bar.println(format!(
            "chunk {chunk_id} attempt {attempt} failed, retrying: {error}"
        )),
        _ => {}
    })
}

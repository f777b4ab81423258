//! Progress of long CLI work: a bar with counts, bytes and an ETA on a terminal (stderr),
//! nothing otherwise (the command then prints a JSON summary at the end). The work counts
//! into a `WorkProgress`; the bar reads it a few times a second.

use std::io::IsTerminal as _;
use std::sync::Arc;
use std::time::Duration;

use artstore_admin::progress::{Snapshot, WorkProgress};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Whether to draw bars: stderr is a terminal and JSON output was not asked for.
pub fn interactive(json: bool) -> bool {
    !json && std::io::stderr().is_terminal()
}

const REDRAW: Duration = Duration::from_millis(100);

/// A bar drawing a `WorkProgress` until `finish`.
pub struct Bar {
    drawing: Option<(
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    )>,
}

/// Draws `work` on stderr when `show`; otherwise does nothing at all.
pub fn watch(show: bool, work: Arc<WorkProgress>) -> Bar {
    if !show {
        return Bar { drawing: None };
    }
    let (stop, mut stopped) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        let mut shown: Option<(String, bool)> = None;
        // Once before anything else, so even work shorter than a redraw shows its bar.
        draw(&bar, &work.snapshot(), &mut shown);
        let mut tick = tokio::time::interval(REDRAW);
        loop {
            tokio::select! {
                _ = tick.tick() => draw(&bar, &work.snapshot(), &mut shown),
                _ = &mut stopped => break,
            }
        }
        // Where the work ended, then cleared for the summary.
        draw(&bar, &work.snapshot(), &mut shown);
        bar.finish_and_clear();
    });
    Bar {
        drawing: Some((stop, task)),
    }
}

impl Bar {
    /// Clears the bar (before the summary is printed).
    pub async fn finish(self) {
        if let Some((stop, task)) = self.drawing {
            let _ = stop.send(());
            let _ = task.await;
        }
    }
}

/// Bytes when their total is known (hashing), items otherwise; a new phase starts a new bar.
fn draw(bar: &ProgressBar, s: &Snapshot, shown: &mut Option<(String, bool)>) {
    let by_bytes = s.bytes_total.is_some_and(|b| b > 0);
    if shown.as_ref() != Some(&(s.phase.clone(), by_bytes)) {
        let template = if by_bytes {
            "{prefix:>10} [{bar:30}] {bytes}/{total_bytes} {msg} {binary_bytes_per_sec} ETA {eta}"
        } else {
            "{prefix:>10} [{bar:30}] {pos}/{len} {msg} ETA {eta}"
        };
        bar.reset();
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(s.phase.clone());
        *shown = Some((s.phase.clone(), by_bytes));
    }
    let (pos, len) = if by_bytes {
        (s.bytes_done, s.bytes_total)
    } else {
        (s.items_done, s.items_total)
    };
    match len {
        Some(l) => bar.set_length(l),
        None => bar.unset_length(),
    }
    bar.set_position(pos);
    let mut msg = String::new();
    if by_bytes {
        msg = match s.items_total {
            Some(t) => format!("{}/{t} files", s.items_done),
            None => format!("{} files", s.items_done),
        };
    }
    if let Some(e) = &s.element {
        msg = format!("{msg} {e}").trim().to_owned();
    }
    bar.set_message(msg);
}

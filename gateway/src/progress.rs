//! Progress of long CLI work: a bar with counts, bytes and an ETA on a terminal (stderr),
//! nothing otherwise (the command then prints a JSON summary at the end).

use std::io::IsTerminal as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Whether to draw bars: stderr is a terminal and JSON output was not asked for.
pub fn interactive(json: bool) -> bool {
    !json && std::io::stderr().is_terminal()
}

/// One phase of work over `items` things holding `bytes` bytes. Cheap to clone; safe to
/// advance from blocking threads.
#[derive(Clone)]
pub struct Progress {
    bar: ProgressBar,
    items: Arc<AtomicU64>,
    total_items: u64,
    by_bytes: bool,
}

impl Progress {
    /// A phase measured in bytes (hashing, copying), with the item count beside it.
    pub fn bytes(show: bool, label: &str, total_items: u64, total_bytes: u64) -> Progress {
        let style =
            "{prefix:>10} [{bar:30}] {bytes}/{total_bytes} {msg} {binary_bytes_per_sec} ETA {eta}";
        Progress::new(show, label, total_items, total_bytes, style, true)
    }

    /// A phase measured in items (index writes).
    pub fn items(show: bool, label: &str, total_items: u64) -> Progress {
        let style = "{prefix:>10} [{bar:30}] {pos}/{len} {msg} ETA {eta}";
        Progress::new(show, label, total_items, total_items, style, false)
    }

    fn new(
        show: bool,
        label: &str,
        total_items: u64,
        len: u64,
        template: &str,
        by_bytes: bool,
    ) -> Progress {
        let bar = if show {
            let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix(label.to_owned());
            bar
        } else {
            ProgressBar::hidden()
        };
        let p = Progress {
            bar,
            items: Arc::new(AtomicU64::new(0)),
            total_items,
            by_bytes,
        };
        p.show_items(0);
        p
    }

    fn show_items(&self, done: u64) {
        if self.by_bytes {
            self.bar
                .set_message(format!("{done}/{} files", self.total_items));
        }
    }

    /// `n` more bytes done.
    pub fn add_bytes(&self, n: u64) {
        if self.by_bytes {
            self.bar.inc(n);
        }
    }

    /// One more item done.
    pub fn item_done(&self) {
        let done = self.items.fetch_add(1, Ordering::Relaxed) + 1;
        if self.by_bytes {
            self.show_items(done);
        } else {
            self.bar.inc(1);
        }
    }

    /// Prints a line above the bar (or on stderr when there is none drawn: not at all).
    pub fn note(&self, line: &str) {
        if !self.bar.is_hidden() {
            self.bar.println(line);
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

//! Progress bars on stderr, shown only when stderr is a terminal.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar counting bytes towards `total` (a spinner when 0).
    pub fn bytes(msg: &'static str, total: u64, quiet: bool) -> Self {
        let bar = if total > 0 { ProgressBar::new(total) } else { ProgressBar::new_spinner() };
        let style = if total > 0 {
            ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
        } else {
            ProgressStyle::with_template("{msg} {spinner} {bytes} {bytes_per_sec}")
        };
        if let Ok(style) = style {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(msg);
        if quiet {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        } else {
            // indicatif's stderr target hides itself when stderr is not a
            // terminal, so pipes and CI logs stay clean.
            bar.set_draw_target(ProgressDrawTarget::stderr());
        }
        Self { bar }
    }

    /// A bar counting items.
    pub fn items(msg: &'static str, total: u64, quiet: bool) -> Self {
        let p = Self::bytes(msg, total, quiet);
        if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {per_sec} eta {eta}") {
            p.bar.set_style(style.progress_chars("=> "));
        }
        p
    }

    /// Sets the total (a spinner becomes a bar).
    pub fn set_length(&self, total: u64) {
        if total > 0 {
            self.bar.set_length(total);
            if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}") {
                self.bar.set_style(style.progress_chars("=> "));
            }
        }
    }

    pub fn set_position(&self, pos: u64) {
        self.bar.set_position(pos);
    }

    pub fn inc(&self, n: u64) {
        self.bar.inc(n);
    }

    /// Prints a line above the bar (or plainly when hidden).
    pub fn println(&self, line: &str) {
        if self.bar.is_hidden() {
            eprintln!("{line}");
        } else {
            self.bar.println(line);
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

//! The progress bar of `compress` and `decompress`.

/// A progress bar on stderr that appears only after ~1 s, and never with --quiet or when stderr
/// is not a terminal.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    start: std::time::Instant,
    shown: bool,
}

impl Progress {
    pub fn new(quiet: bool, what: &'static str) -> Progress {
        use std::io::IsTerminal;
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let b = indicatif::ProgressBar::with_draw_target(
                None,
                indicatif::ProgressDrawTarget::hidden(),
            );
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{msg} [{bar:30}] {pos}/{len} samples {elapsed_precise} eta {eta}",
            ) {
                b.set_style(style.progress_chars("=> "));
            }
            b.set_message(what);
            b
        });
        Progress {
            bar,
            start: std::time::Instant::now(),
            shown: false,
        }
    }

    pub fn update(&mut self, done: usize, total: usize) {
        if let Some(b) = &self.bar {
            b.set_length(total as u64);
            b.set_position(done as u64);
            if !self.shown && self.start.elapsed().as_secs_f64() > 1.0 && done < total {
                b.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                self.shown = true;
            }
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

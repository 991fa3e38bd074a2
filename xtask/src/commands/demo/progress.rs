//! The progress display: a spinner per step on a terminal, plain lines otherwise.
use super::*;

pub(super) struct Progress {
    pub(super) tty: bool,
    pub(super) n: usize,
    pub(super) title: String,
    pub(super) bar: Option<ProgressBar>,
    pub(super) started: Instant,
    pub(super) last: String,
}

impl Progress {
    pub(super) fn new() -> Progress {
        Progress {
            tty: std::io::stderr().is_terminal(),
            n: 0,
            title: String::new(),
            bar: None,
            started: Instant::now(),
            last: String::new(),
        }
    }

    pub(super) fn step(&mut self, title: &str) {
        self.n += 1;
        self.title = title.to_string();
        self.started = Instant::now();
        self.last.clear();
        if self.tty {
            let bar =
                ProgressBar::new_spinner().with_prefix(format!("[{}/{STEPS}]", self.n)).with_message(title.to_string());
            bar.set_style(
                ProgressStyle::with_template("{spinner:.cyan} {prefix:.bold} {wide_msg} {elapsed:.dim}")
                    .expect("a valid template")
                    .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ "),
            );
            bar.enable_steady_tick(Duration::from_millis(100));
            self.bar = Some(bar);
        } else {
            eprintln!("[{}/{STEPS}] {title}", self.n);
        }
    }

    /// A status line under the current step (e.g. an InstallPlan's phase).
    pub(super) fn status(&mut self, msg: &str) {
        if msg == self.last {
            return;
        }
        self.last = msg.to_string();
        match &self.bar {
            Some(bar) => bar.set_message(format!("{}: {msg}", self.title)),
            None => eprintln!("      {msg}"),
        }
    }

    pub(super) fn done(&mut self, note: &str) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        let note = if note.is_empty() { String::new() } else { format!(": {note}") };
        eprintln!("✔ [{}/{STEPS}] {}{note} ({:.1}s)", self.n, self.title, self.started.elapsed().as_secs_f64());
    }

    pub(super) fn fail(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if self.n > 0 {
            eprintln!("✘ [{}/{STEPS}] {}", self.n, self.title);
        }
    }
}

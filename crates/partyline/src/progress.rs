//! Progress on stderr for long waits: a spinner on a terminal, and plain
//! lines otherwise, so that logs of scripted runs still show what happened.
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// A status line that can change while something slow happens.
pub struct Status {
    bar: ProgressBar,
}

impl Status {
    pub fn set_message(&self, message: impl Into<String>) {
        let message = message.into();
        if self.bar.is_hidden() {
            eprintln!("partyline: {message}");
        }
        self.bar.set_message(message);
    }

    /// A line of its own above the status line, which stays.
    pub fn println(&self, message: &str) {
        if self.bar.is_hidden() {
            eprintln!("partyline: {message}");
        } else {
            self.bar.println(format!("partyline: {message}"));
        }
    }

    pub fn finish_and_clear(&self) {
        self.bar.finish_and_clear();
    }
}

pub fn spinner(message: impl Into<String>) -> Status {
    let bar = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} ({elapsed})").expect("valid template"),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    } else {
        ProgressBar::hidden()
    };
    let status = Status { bar };
    status.set_message(message);
    status
}

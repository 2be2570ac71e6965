//! Spinners on stderr for long waits; silent when stderr is not a terminal.
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

pub fn spinner(message: impl Into<String>) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})").expect("valid template"),
    );
    bar.set_message(message.into());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

//! Ctrl-C for the whole run of `join`, after mini-redis' `Shutdown`.
use std::future::Future;

use tokio::sync::watch;

/// Ctrl-C, caught once for the whole run, so that no phase misses it.
pub(super) struct Shutdown(watch::Receiver<bool>);

/// The user pressed Ctrl-C while a phase ran.
pub(super) struct Interrupted;

impl Shutdown {
    pub(super) fn listen() -> Self {
        let (pressed, rx) = watch::channel(false);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                let _ = pressed.send(true);
            }
        });
        Self(rx)
    }

    /// Resolves once Ctrl-C was pressed; never, if the signal cannot be caught.
    pub(super) async fn pressed(&mut self) {
        if self.0.wait_for(|pressed| *pressed).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    pub(super) async fn race<T>(
        &mut self,
        phase: impl Future<Output = T>,
    ) -> Result<T, Interrupted> {
        tokio::select! {
            out = phase => Ok(out),
            () = self.pressed() => Err(Interrupted),
        }
    }
}

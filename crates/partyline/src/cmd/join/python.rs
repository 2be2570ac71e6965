//! The program's Python, looked for from the start alongside joining: finding
//! it runs Python once (half a second to a second on a busy machine), which
//! then overlaps announcing, waiting for the roster and connecting instead of
//! coming before them.
use std::future::Future;
use std::pin::Pin;

use partyline_launch::{LaunchError, Python, PythonSource, ensure_python};
use tokio::sync::mpsc;

use crate::cli::PythonArgs;
use crate::config::Config;
use crate::progress::spinner;

type Search = Pin<Box<dyn Future<Output = Result<Python, LaunchError>>>>;

/// A search for Python, advanced while other work runs ([`PythonSearch::alongside`]).
pub(super) struct PythonSearch {
    search: Search,
    found: Option<Result<Python, LaunchError>>,
    /// What a slow search is doing (building the managed environment).
    statuses: mpsc::UnboundedReceiver<String>,
}

impl PythonSearch {
    /// A search for a Python with MPyC if the program is a Python script.
    pub(super) fn start(program: &[String], args: &PythonArgs, config: &Config) -> Option<Self> {
        if !program[0].ends_with(".py") {
            return None;
        }
        let source = match args.python.clone().or_else(|| config.python.clone()) {
            Some(path) => PythonSource::Explicit(path),
            None => PythonSource::Managed,
        };
        let (tell, statuses) = mpsc::unbounded_channel();
        let search = Box::pin(async move {
            let progress = move |status: &str| {
                let _ = tell.send(status.to_string());
            };
            let found = ensure_python(source, &progress).await;
            super::phase("python found");
            found
        });
        Some(Self {
            search,
            found: None,
            statuses,
        })
    }

    /// Runs `work` while the search goes on.
    pub(super) async fn alongside<T>(&mut self, work: impl Future<Output = T>) -> T {
        tokio::pin!(work);
        loop {
            tokio::select! {
                biased;
                done = &mut work => return done,
                found = &mut self.search, if self.found.is_none() => self.found = Some(found),
            }
        }
    }

    /// Runs `work` while the search goes on, and stops it as soon as the
    /// search fails (or if it has failed): a party without Python gives up
    /// before the others count on it. A failed search is spent.
    pub(super) async fn unless_failed<T>(
        &mut self,
        work: impl Future<Output = T>,
    ) -> Result<T, LaunchError> {
        match self.found.take() {
            Some(Err(error)) => return Err(error),
            found => self.found = found,
        }
        tokio::pin!(work);
        loop {
            tokio::select! {
                biased;
                done = &mut work => return Ok(done),
                found = &mut self.search, if self.found.is_none() => self.found = Some(Ok(found?)),
            }
        }
    }

    /// The Python found; says once if it lacks MPyC's extras. While the
    /// search is still under way, a status line says so.
    pub(super) async fn found(mut self) -> Result<Python, LaunchError> {
        let found = match self.found.take() {
            Some(found) => found,
            None => {
                let status = spinner("looking for Python with MPyC");
                let found = loop {
                    tokio::select! {
                        found = &mut self.search => break found,
                        Some(message) = self.statuses.recv() => status.set_message(message),
                    }
                };
                status.finish_and_clear();
                found
            }
        };
        let python = found?;
        if let Some(hint) = python.hint() {
            eprintln!("partyline: {hint}");
        }
        Ok(python)
    }
}

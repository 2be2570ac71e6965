//! One module per subcommand.
mod bench;
mod create;
mod demo;
mod id;
mod join;
pub mod lab;
mod relay;
mod serve;

use crate::cli::{Cli, Command};
use crate::config::Config;

/// Runs the command and returns the process exit code.
pub async fn run(cli: Cli) -> anyhow::Result<i32> {
    let config = Config::load(cli.config_dir.as_deref())?;
    match cli.command {
        Command::Serve(args) => serve::run(args).await,
        Command::Relay(args) => relay::run(args).await,
        Command::Create(args) => create::run(args, &config).await,
        Command::Join(args) => join::run(args, &config).await,
        Command::Id(args) => id::run(args, &config),
        Command::Demo(args) => demo::run(args, cli.verbose).await,
        Command::Bench(args) => bench::run(args, &config).await,
        Command::Lab(args) => lab::run(args, &config).await,
    }
}

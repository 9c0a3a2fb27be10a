//! `rcompose config`

use std::process::ExitCode;

use clap::Args;

use super::GlobalOpts;

#[derive(Debug, Args)]
pub struct ConfigArgs {}

pub fn run(_global: &GlobalOpts, _args: ConfigArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("the compose loader is not built yet")
}

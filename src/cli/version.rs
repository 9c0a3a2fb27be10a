//! `rcompose version`

use std::process::ExitCode;

use clap::Args;

use super::GlobalOpts;

#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Format the output: pretty or json
    #[arg(long, default_value = "pretty")]
    pub format: String,
    /// Show only the version number
    #[arg(long)]
    pub short: bool,
}

pub fn run(_global: &GlobalOpts, args: VersionArgs) -> anyhow::Result<ExitCode> {
    let version = env!("CARGO_PKG_VERSION");
    if args.short {
        println!("{version}");
    } else if args.format == "json" {
        println!("{}", serde_json::json!({ "version": version }));
    } else {
        println!("rcompose version v{version}");
    }
    Ok(ExitCode::SUCCESS)
}

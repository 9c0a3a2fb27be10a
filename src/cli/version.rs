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
    /// docker's `version`: client and engine blocks (what `docker version` maps to)
    #[arg(long, hide = true)]
    pub engine: bool,
}

pub fn run(_global: &GlobalOpts, args: VersionArgs) -> anyhow::Result<ExitCode> {
    let version = env!("CARGO_PKG_VERSION");
    if args.engine {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            a => a,
        };
        if args.format == "json" {
            let block = serde_json::json!({"Version": version, "ApiVersion": "1.41",
                                           "Os": "linux", "Arch": arch});
            println!("{}", serde_json::json!({"Client": block, "Server": block}));
        } else {
            // docker's two blocks; the engine is this binary (no daemon behind it).
            println!(
                "Client:\n Version:           {version} (rcompose)\n API version:       1.41\n OS/Arch:           linux/{arch}\n\nServer: rcompose (daemonless)\n Engine:\n  Version:          {version}\n  API version:      1.41\n  OS/Arch:          linux/{arch}"
            );
        }
    } else if args.short {
        println!("{version}");
    } else if args.format == "json" {
        println!("{}", serde_json::json!({ "version": version }));
    } else {
        println!("rcompose version v{version}");
    }
    Ok(ExitCode::SUCCESS)
}

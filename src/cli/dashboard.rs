//! `rcompose dashboard`: serves the web dashboard (crate `rcompose-dashboard`) until stopped.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::Args;

use super::GlobalOpts;

#[derive(Debug, Args)]
pub struct DashboardArgs {
    /// Address to serve on. Beyond loopback every request must carry the token printed at
    /// start; on loopback, changes do.
    #[arg(long, value_name = "ADDR:PORT", default_value = rcompose_dashboard::DEFAULT_LISTEN)]
    pub listen: SocketAddr,
}

pub fn run(g: &GlobalOpts, a: DashboardArgs) -> Result<ExitCode> {
    let listener = rcompose_dashboard::bind(a.listen)?;
    let addr = listener
        .local_addr()
        .context("reading the listening address")?;
    let token = rcompose_dashboard::new_token().context("making the dashboard's token")?;
    let guard = rcompose_dashboard::Guard::new(addr, token);
    let ctx = rcompose_api::Context::new(
        g.root.clone(),
        g.run_root.clone(),
        std::env::current_exe().context("locating the rcompose binary for the monitor")?,
    );
    let host = match addr {
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
        SocketAddr::V4(a) => a.to_string(),
    };
    println!("Dashboard: http://{host}/?token={}", guard.token());
    println!("Token: {}", guard.token());
    if guard.token_required() {
        println!(
            "Every request must carry the token ({} header, or ?token= on the first page load); keep it secret.",
            rcompose_dashboard::TOKEN_HEADER
        );
    } else {
        println!("Without the token the page is read-only (http://{host}/); keep it secret.");
    }
    println!("Press Ctrl-C to stop.");
    rcompose_dashboard::serve(ctx, listener, guard)?;
    Ok(ExitCode::SUCCESS)
}

//! `rcompose login` / `rcompose logout`: credentials in Docker's config.json
//! (`$DOCKER_CONFIG/config.json`, default `~/.docker/config.json`).

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use rcompose_engine::image::registry::Client;
use rcompose_engine::image::registry::auth::{self, Credentials};

use super::GlobalOpts;

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Registry server (default: Docker Hub)
    pub server: Option<String>,
    /// Username
    #[arg(short, long)]
    pub username: Option<String>,
    /// Password
    #[arg(short, long)]
    pub password: Option<String>,
    /// Take the password from stdin
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// Registry server (default: Docker Hub)
    pub server: Option<String>,
}

/// `https://host:5000/v2/` → `host:5000`; Docker Hub aliases → `docker.io`.
fn registry_host(server: Option<&str>) -> String {
    let s = server.unwrap_or("docker.io");
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let host = s.split('/').next().unwrap_or(s);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "" => "docker.io".into(),
        h => h.to_string(),
    }
}

fn prompt(label: &str, hide: bool) -> anyhow::Result<String> {
    let stdin_tty = std::io::stdin().is_terminal();
    if !stdin_tty {
        bail!(
            "cannot prompt for the {label}: stdin is not a terminal (use -u/-p or --password-stdin)"
        );
    }
    eprint!("{label}: ");
    let _ = std::io::stderr().flush();
    let mut saved = None;
    if hide {
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        if unsafe { libc::tcgetattr(libc::STDIN_FILENO, &mut t) } == 0 {
            saved = Some(t);
            let mut quiet = t;
            quiet.c_lflag &= !libc::ECHO;
            unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &quiet) };
        }
    }
    let mut line = String::new();
    let res = std::io::stdin().lock().read_line(&mut line);
    if let Some(t) = saved {
        unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &t) };
        eprintln!();
    }
    res?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

pub fn login(_global: &GlobalOpts, a: LoginArgs) -> anyhow::Result<ExitCode> {
    let host = registry_host(a.server.as_deref());
    if a.password.is_some() && a.password_stdin {
        bail!("--password and --password-stdin are mutually exclusive");
    }
    if a.password_stdin && a.username.is_none() {
        bail!("Must provide --username with --password-stdin");
    }
    let username = match a.username {
        Some(u) => u,
        None => prompt("Username", false)?,
    };
    let password = if a.password_stdin {
        let mut s = String::new();
        std::io::stdin().lock().read_line(&mut s)?;
        s.trim_end_matches(['\n', '\r']).to_string()
    } else {
        match a.password {
            Some(p) => {
                eprintln!(
                    "WARNING! Using --password via the CLI is insecure. Use --password-stdin."
                );
                p
            }
            None => prompt("Password", true)?,
        }
    };
    if username.is_empty() || password.is_empty() {
        bail!("Error: Username and password are required");
    }
    let creds = Credentials {
        username,
        secret: password,
    };
    let client = Client::new()?.with_credentials(creds.clone());
    let ep = client.endpoint(&host);
    client
        .ping(&ep)
        .with_context(|| format!("login to {host} failed"))?;
    auth::store(&host, &creds)?;
    println!("Login Succeeded");
    Ok(ExitCode::SUCCESS)
}

pub fn logout(_global: &GlobalOpts, a: LogoutArgs) -> anyhow::Result<ExitCode> {
    let host = registry_host(a.server.as_deref());
    let shown = auth::config_key(&host);
    if auth::erase(&host)? {
        println!("Removing login credentials for {shown}");
    } else {
        println!("Not logged in to {shown}");
    }
    Ok(ExitCode::SUCCESS)
}

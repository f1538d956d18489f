//! `v2l assets list|fetch|path`.

use crate::args::AssetsCommand;
use serde_json::json;
use v2l::assets::fetch::{self, FetchEvent, FileState};
use v2l::assets::{AssetError, MANIFEST};

fn state_name(s: FileState) -> &'static str {
    match s {
        FileState::Missing => "missing",
        FileState::Present => "present",
        FileState::Verified => "verified",
        FileState::Corrupt => "corrupt",
    }
}

/// `1.4 MB`, `13.3 kB`, `512 B` (decimal units).
fn human_size(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.1} kB", b / 1e3)
    } else {
        format!("{bytes} B")
    }
}

pub fn run(cmd: AssetsCommand) -> Result<(), AssetError> {
    match cmd {
        AssetsCommand::List { verify, json } => list(verify, json),
        AssetsCommand::Fetch { names, json } => fetch_all(&names, json),
        AssetsCommand::Path { name, file, json } => path(name, file, json),
    }
}

fn list(verify: bool, json: bool) -> Result<(), AssetError> {
    let mut rows = Vec::new();
    for a in MANIFEST {
        let mut states = Vec::new();
        for f in a.files {
            states.push((f, fetch::file_state(a, f, verify)?));
        }
        let worst = states
            .iter()
            .map(|(_, s)| *s)
            .max_by_key(|s| match s {
                FileState::Verified => 0,
                FileState::Present => 1,
                FileState::Missing => 2,
                FileState::Corrupt => 3,
            })
            .unwrap_or(FileState::Missing);
        if json {
            rows.push(json!({
                "name": a.name,
                "description": a.description,
                "license": a.license,
                "client": a.client.to_string(),
                "package": a.spec(),
                "size": a.size(),
                "state": state_name(worst),
                "files": states.iter().map(|(f, s)| json!({
                    "name": f.name, "inner_path": f.inner_path, "sha256": f.sha256,
                    "size": f.size, "state": state_name(*s),
                })).collect::<Vec<_>>(),
            }));
        } else {
            println!(
                "{:<16} {:<9} {:>9}  {:<4} {:<45} {}",
                a.name,
                state_name(worst),
                human_size(a.size()),
                a.client.to_string(),
                a.spec(),
                a.description
            );
        }
    }
    if json {
        println!(
            "{}",
            json!({ "home": fetch::home()?.display().to_string(), "assets": rows })
        );
    }
    Ok(())
}

fn fetch_all(names: &[String], json: bool) -> Result<(), AssetError> {
    let assets = if names.is_empty() {
        MANIFEST.iter().collect::<Vec<_>>()
    } else {
        names
            .iter()
            .map(|n| fetch::lookup(n))
            .collect::<Result<Vec<_>, _>>()?
    };
    let bar = crate::progress::spinner(assets.len() as u64, "assets");
    let mut out = Vec::new();
    for a in assets {
        bar.set_message(format!("{} ({})", a.name, a.spec()));
        let mut fetched = true;
        let paths = fetch::fetch(a, &mut |e| match e {
            FetchEvent::AlreadyPresent(_) => fetched = false,
            FetchEvent::Running { command, .. } => {
                bar.set_message(format!("{}: {command}", a.name))
            }
            FetchEvent::Extracting(_) => {
                bar.set_message(format!("{}: verifying and extracting", a.name))
            }
            FetchEvent::Stored { .. } => {}
        })?;
        bar.inc(1);
        let verb = if fetched {
            "fetched"
        } else {
            "already present"
        };
        if json {
            out.push(json!({
                "name": a.name,
                "status": verb,
                "paths": paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            }));
        } else {
            bar.suspend(|| eprintln!("{:<16} {verb}", a.name));
        }
    }
    bar.finish_and_clear();
    if json {
        println!("{}", json!({ "assets": out }));
    }
    Ok(())
}

fn path(name: Option<String>, file: Option<String>, json: bool) -> Result<(), AssetError> {
    let p = match (name, file) {
        (None, _) => fetch::home()?,
        (Some(n), None) => fetch::asset_dir(fetch::lookup(&n)?)?,
        (Some(n), Some(f)) => {
            let a = fetch::lookup(&n)?;
            let af = a.file(&f).ok_or_else(|| AssetError::UnknownFile {
                asset: n.clone(),
                file: f.clone(),
            })?;
            fetch::file_path(a, af)?
        }
    };
    if json {
        println!(
            "{}",
            json!({ "path": p.display().to_string(), "exists": p.exists() })
        );
    } else {
        println!("{}", p.display());
    }
    Ok(())
}

//! `terrarium mcp`: one world's episodes served to an MCP client over stdio. Stdout is
//! the protocol's; everything said to a person goes to stderr.

use std::path::Path;

use anyhow::{Context as _, anyhow};
use terrarium_runtime::mcp::McpServer;

use crate::common::*;

pub(crate) fn mcp_cmd(
    path: &Path,
    conditions: &[String],
    seed: u64,
    samples: u64,
    out: Option<&Path>,
    http: Option<u16>,
) -> Outcome {
    if samples == 0 {
        return Err(Failure::Usage(anyhow!("--samples must be at least 1")));
    }
    // The server lives as long as the process: the world and its cells are leaked to
    // give the episodes it runs a 'static world.
    let world: &'static terrarium_core::World = Box::leak(Box::new(one_world(path, "mcp")?));
    let filter = parse_conditions(conditions)?;
    let cells = if filter.is_empty() {
        vec![world.default_cell.clone()]
    } else {
        world.select_cells(&filter).map_err(|e| Failure::Usage(anyhow!(e)))?
    };
    let cells: &'static [terrarium_core::Cell] = Box::leak(cells.into_boxed_slice());
    let out = out.map_or_else(|| Path::new("runs").join(format!("{}-mcp", world.id())), Path::to_path_buf);
    let server = McpServer::new(world, cells, seed, samples, out.clone(), BUILD.map(String::from))
        .map_err(|e| Failure::Io(anyhow!("cannot open {}: {e}", out.display())))?;
    let episodes = cells.len() as u64 * samples;
    let what = format!("world `{}` ({})", world.id(), count(episodes, "episode"));
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the async runtime")?;
    let served = match http {
        None => {
            eprintln!("terrarium mcp: serving {what} over stdio into {}", out.display());
            runtime.block_on(server.serve_stdio())
        }
        Some(port) => runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
                .await
                .map_err(|e| format!("cannot listen on 127.0.0.1:{port}: {e}"))?;
            let addr = listener.local_addr().map_err(|e| e.to_string())?;
            eprintln!("terrarium mcp: serving {what} at http://{addr}/mcp into {} (interrupt to stop)", out.display());
            server.serve_http(listener, interrupted()).await
        }),
    }
    .map_err(|e| Failure::Io(anyhow!(e)))?;
    eprintln!("{} -> {}", count(served.episodes.len() as u64, "episode"), served.out.join("episodes.jsonl").display());
    Ok(())
}

/// SIGINT or SIGTERM.
async fn interrupted() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(t) => t,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

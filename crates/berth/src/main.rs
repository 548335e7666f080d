//! The `berth` binary: the server (`berth serve`) and, later, the CLI and agent.

use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "berth", version, about)]
enum Cli {
    /// Start the Berth server.
    Serve,
}

fn main() -> anyhow::Result<()> {
    let Cli::Serve = Cli::parse();
    tokio::runtime::Runtime::new()?.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
        berth_server::serve(listener, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
        Ok(())
    })
}

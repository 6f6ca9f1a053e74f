//! `weft-bench serve-ceiling`: the ceiling of the REST GET comparison — a bare poem route at
//! `/weaviate/v1/things/:id` whose handler answers the JSON of a real `GET /things/{id}` answer
//! (read once from `--body-file`) with `thingId` set to the requested id, serialised per request.
//! No authentication, no storage: what poem and the JSON cost on this machine. Runs on a
//! multi-threaded tokio runtime like `weft serve`, in its own process like it; prints
//! `ceiling: listening on http://127.0.0.1:PORT/weaviate/v1` and exits when stdin closes.

use std::io::Read as _;
use std::sync::Arc;

use anyhow::Context as _;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::{Data, Json, Path};
use poem::{get, handler, EndpointExt, Route, Server};
use serde_json::Value;

#[derive(clap::Args, Debug)]
pub struct CeilingArgs {
    /// A JSON object to answer (a real `GET /things/{id}` answer).
    #[arg(long)]
    pub body_file: std::path::PathBuf,
}

#[handler]
fn thing(Path(id): Path<String>, template: Data<&Arc<Value>>) -> Json<Value> {
    let mut v = Value::clone(&template);
    v["thingId"] = Value::String(id);
    Json(v)
}

pub fn serve(a: CeilingArgs) -> anyhow::Result<()> {
    let template: Value = serde_json::from_slice(
        &std::fs::read(&a.body_file).with_context(|| format!("read {}", a.body_file.display()))?,
    )?;
    // Exit when the benchmark that started this process goes away.
    std::thread::spawn(|| {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        std::process::exit(0);
    });
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            let acceptor = TcpListener::bind("127.0.0.1:0").into_acceptor().await?;
            let addr = acceptor
                .local_addr()
                .first()
                .and_then(|a| a.as_socket_addr().copied())
                .context("no local address")?;
            println!("ceiling: listening on http://{addr}/weaviate/v1");
            let app = Route::new()
                .at("/weaviate/v1/things/:id", get(thing))
                .data(Arc::new(template));
            Server::new_with_acceptor(acceptor).run(app).await?;
            anyhow::Ok(())
        })
}

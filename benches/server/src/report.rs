//! `weft-bench report`: gathers the parts of one `scripts/bench.sh` run from its directory
//! (`plugin-get.txt`, the output of `cargo bench -p weft-dev-memory --bench get`; `server.json`,
//! `weft-bench server` against dev-memory; `server-embedded.json`, the same against embedded
//! without the REST GET part; `contextionary-weft.json`, the Weft side of
//! `benches/contextionary/run.sh`, and with `--with-faiss` `contextionary.txt`, its report
//! against faiss, and `contextionary-faiss.json`, the two HNSW indexes at equal recall; or
//! `contextionary.skipped`; `explore.json` and `explore-baseline.json`, `weft-bench explore`
//! with vectors and its baseline without, or `explore.skipped`), prints one table with the machine and whether
//! each goal is met, and writes it all to `results.json`. Exit code: 0 when every goal is met, 1
//! when one is not.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde_json::{json, Value};

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// The run's directory (`target/bench`).
    #[arg(long)]
    pub dir: PathBuf,
    /// Wall time of a part, `NAME=SECONDS` (repeatable).
    #[arg(long = "timing")]
    pub timings: Vec<String>,
}

/// The number after `label` on the first line containing it.
fn number_after(text: &str, label: &str) -> Option<f64> {
    let line = text.lines().find(|l| l.contains(label))?;
    let rest = &line[line.find(label)? + label.len()..];
    rest.split_whitespace().next()?.parse().ok()
}

fn plugin_part(dir: &Path) -> Value {
    let Ok(text) = std::fs::read_to_string(dir.join("plugin-get.txt")) else {
        return json!({"missing": "plugin-get.txt"});
    };
    json!({
        "so_ns_per_call": number_after(&text, "loaded .so :"),
        "static_ns_per_call": number_after(&text, "static     :"),
        "ratio": number_after(&text, "ratio so/static:"),
        "output": text,
    })
}

fn contextionary_part(dir: &Path) -> Value {
    if let Ok(reason) = std::fs::read_to_string(dir.join("contextionary.skipped")) {
        return json!({"skipped": reason.trim()});
    }
    let weft: Value = std::fs::read(dir.join("contextionary-weft.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    let text = std::fs::read_to_string(dir.join("contextionary.txt")).unwrap_or_default();
    json!({
        "weft": weft,
        "faiss_ms_exact": number_after(&text, "faiss IndexFlatIP (BLAS)"),
        "faiss_over_weft_exact": number_after(&text, "ratio faiss/weft           "),
        "report": text,
    })
}

fn explore_part(dir: &Path) -> Value {
    if let Ok(reason) = std::fs::read_to_string(dir.join("explore.skipped")) {
        return json!({"skipped": reason.trim()});
    }
    match read_json(&dir.join("explore.json"), "search by meaning") {
        Ok(v) => v,
        Err(e) => json!({"skipped": format!("{e:#}")}),
    }
}

/// GraphQL queries of a `weft-bench server` result that answered errors (a missing count counts
/// as one).
fn graphql_errors(server: &Value) -> u64 {
    let g = &server["graphql"];
    ["small", "large"]
        .iter()
        .flat_map(|s| ["get_where_equal", "getmeta"].map(|k| &g[s][k]["errors"]))
        .map(|e| e.as_u64().unwrap_or(1))
        .sum()
}

fn read_json(path: &Path, what: &str) -> anyhow::Result<Value> {
    let bytes = std::fs::read(path).with_context(|| format!("{} ({what})", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("{} ({what})", path.display()))
}

pub(crate) fn fmt_int(x: f64) -> String {
    let s = format!("{:.0}", x);
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn met(ok: Option<bool>) -> &'static str {
    match ok {
        Some(true) => "yes",
        Some(false) => "**no**",
        None => "—",
    }
}

pub fn report(a: ReportArgs) -> anyhow::Result<bool> {
    let machine = crate::machine::info();
    let plugin = plugin_part(&a.dir);
    let server = read_json(&a.dir.join("server.json"), "the server part, dev-memory")?;
    let embedded = read_json(
        &a.dir.join("server-embedded.json"),
        "the server part, embedded",
    )?;
    let c11y = contextionary_part(&a.dir);
    let explore = explore_part(&a.dir);
    let faiss: Option<Value> = std::fs::read(a.dir.join("contextionary-faiss.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let timings: Vec<(String, f64)> = a
        .timings
        .iter()
        .filter_map(|t| t.split_once('='))
        .map(|(k, v)| (k.to_string(), v.parse::<f64>().unwrap_or(f64::NAN)))
        .collect();

    let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    let plugin_ratio = plugin["ratio"].as_f64();
    let plugin_ok = plugin_ratio.map(|r| r <= 1.10);
    let get = &server["rest_get"];
    let get_ratio = f(&get["ratio"]);
    let get_errors = get["weft_errors"].as_u64().unwrap_or(u64::MAX);
    let get_ok = get_ratio >= 0.5 && get_errors == 0;
    let import = &server["import"];
    let import_rate = f(&import["things_per_s"]);
    let import_ok = import_rate >= 50_000.0 && import["errors"].as_u64() == Some(0);
    let e_import = &embedded["import"];
    let e_import_rate = f(&e_import["things_per_s"]);
    let e_import_ok = e_import_rate >= 20_000.0 && e_import["errors"].as_u64() == Some(0);
    let g = &server["graphql"];
    let eg = &embedded["graphql"];
    let graphql_errors = graphql_errors(&server) + graphql_errors(&embedded);

    let mut rows: Vec<[String; 6]> = vec![];
    rows.push([
        "plugin call `get_object`: loaded `.so` vs statically linked".into(),
        format!(
            "{:.1} ns/call",
            plugin["so_ns_per_call"].as_f64().unwrap_or(f64::NAN)
        ),
        format!(
            "{:.1} ns/call (static)",
            plugin["static_ns_per_call"].as_f64().unwrap_or(f64::NAN)
        ),
        plugin_ratio.map_or("—".into(), |r| format!("{r:.3}")),
        "≤ 1.10".into(),
        met(plugin_ok).into(),
    ]);
    rows.push([
        format!(
            "REST `GET /things/{{id}}`, root key, {} connections",
            get["connections"]
        ),
        format!(
            "{} req/s, {} errors",
            fmt_int(f(&get["weft_requests_per_s"])),
            get_errors
        ),
        format!(
            "{} req/s (bare poem route)",
            fmt_int(f(&get["ceiling_requests_per_s"]))
        ),
        format!(
            "{get_ratio:.3} (median of {} rounds)",
            get["rounds"].as_array().map_or(0, Vec::len)
        ),
        "≥ 0.50, 0 errors".into(),
        met(Some(get_ok)).into(),
    ]);
    rows.push([
        format!(
            "batch import into dev-memory ({} per batch, {} in flight, {} things)",
            import["batch"],
            import["connections"],
            fmt_int(f(&import["objects"]))
        ),
        format!(
            "{} things/s, {} errors",
            fmt_int(import_rate),
            import["errors"]
        ),
        "—".into(),
        "—".into(),
        "≥ 50,000/s".into(),
        met(Some(import_ok)).into(),
    ]);
    rows.push([
        format!(
            "batch import into embedded (durable, fsync per group commit) ({} per batch, {} in flight, {} things)",
            e_import["batch"],
            e_import["connections"],
            fmt_int(f(&e_import["objects"]))
        ),
        format!(
            "{} things/s, {} errors",
            fmt_int(e_import_rate),
            e_import["errors"]
        ),
        format!("{} things/s (dev-memory)", fmt_int(import_rate)),
        format!("{:.2} of dev-memory", e_import_rate / import_rate),
        "≥ 20,000/s".into(),
        met(Some(e_import_ok)).into(),
    ]);
    let ms = |g: &Value, key: &str| {
        format!(
            "{:.2} → {:.2} ms/query",
            f(&g["small"][key]["mean_ms"]),
            f(&g["large"][key]["mean_ms"])
        )
    };
    let growth = |g: &Value, key: &str| {
        format!(
            "{:.1}× (data {:.0}×)",
            f(&g[format!("{key}_ratio").as_str()]),
            f(&g["growth_objects"])
        )
    };
    let sizes = |g: &Value| {
        format!(
            "{} → {} objects",
            fmt_int(f(&g["small"]["objects"])),
            fmt_int(f(&g["large"]["objects"]))
        )
    };
    for (key, name) in [
        (
            "get_where_equal",
            "GraphQL `Get` with `where` name = … (1 hit)",
        ),
        ("getmeta", "GraphQL `GetMeta` (count, int stats)"),
    ] {
        rows.push([
            format!("{name}, dev-memory, {}", sizes(g)),
            ms(g, key),
            format!("{} objects", fmt_int(f(&g["small"]["objects"]))),
            growth(g, key),
            "report (an indexed connector must beat it)".into(),
            "—".into(),
        ]);
        rows.push([
            format!("{name}, embedded, {}", sizes(eg)),
            ms(eg, key),
            format!("dev-memory {}, {}", ms(g, key), growth(g, key)),
            growth(eg, key),
            "report".into(),
            "—".into(),
        ]);
    }
    if let Some(reason) = c11y["skipped"].as_str() {
        rows.push([
            "contextionary (benches/contextionary/run.sh)".into(),
            format!("skipped: {reason}"),
            "—".into(),
            "—".into(),
            "report".into(),
            "—".into(),
        ]);
    } else {
        let w = &c11y["weft"];
        rows.push([
            format!(
                "contextionary exact search, {} queries × {} words, {} threads",
                w["queries"], w["rows"], w["threads"]
            ),
            format!("{:.1} ms", f(&w["exact_batch_s"]) * 1e3),
            match c11y["faiss_ms_exact"].as_f64() {
                Some(ms) => format!("faiss IndexFlatIP {ms:.1} ms"),
                None => "faiss: not run (`--with-faiss`)".into(),
            },
            c11y["faiss_over_weft_exact"]
                .as_f64()
                .map_or("—".into(), |r| format!("faiss/weft {r:.2}")),
            "report".into(),
            "—".into(),
        ]);
        rows.push([
            format!(
                "contextionary approximate (HNSW, ef {}), recall@{}",
                w["ef_search"], w["k"]
            ),
            format!(
                "{:.1} ms, recall {:.3}",
                f(&w["approx_batch_s"]) * 1e3,
                f(&w["approx_recall"])
            ),
            format!("exact {:.1} ms", f(&w["exact_batch_s"]) * 1e3),
            format!(
                "{:.1}× faster",
                f(&w["exact_batch_s"]) / f(&w["approx_batch_s"])
            ),
            "report".into(),
            "—".into(),
        ]);
        rows.push([
            "contextionary start-up: mmap vs parsing the text format".into(),
            format!("{:.1} ms", f(&w["startup_mmap_s"]) * 1e3),
            format!("{:.0} ms text", f(&w["startup_text_finalfusion_s"]) * 1e3),
            format!(
                "{:.0}× faster",
                f(&w["startup_text_finalfusion_s"]) / f(&w["startup_mmap_s"])
            ),
            "report".into(),
            "—".into(),
        ]);
    }

    let mut hnsw_equal_recall_ok = None;
    if let Some(fa) = &faiss {
        for r in fa["equal_recall_default"].as_array().into_iter().flatten() {
            let ok = r["met"].as_bool();
            hnsw_equal_recall_ok = Some(hnsw_equal_recall_ok.unwrap_or(true) && ok == Some(true));
            rows.push([
                format!(
                    "contextionary HNSW at equal recall ({:.4}, Weft's default ef {}), {} thread(s)",
                    f(&r["recall"]),
                    r["ef"],
                    r["threads"]
                ),
                format!("Weft {:.1} ms", f(&r["weft_s"]) * 1e3),
                match r["faiss_s"].as_f64() {
                    Some(s) => format!(
                        "faiss IndexHNSWFlat {:.1} ms ({})",
                        s * 1e3,
                        r["faiss_how"].as_str().unwrap_or("")
                    ),
                    None => "faiss: never reaches that recall".into(),
                },
                format!("faiss/weft {:.2}", f(&r["faiss_s"]) / f(&r["weft_s"])),
                "Weft ≤ faiss time".into(),
                met(ok).into(),
            ]);
        }
    }

    // Search by meaning (weft-bench explore).
    let mut explore_goals: Vec<(&str, bool)> = vec![];
    if let Some(reason) = explore["skipped"].as_str() {
        rows.push([
            "search by meaning (weft-bench explore)".into(),
            format!("skipped: {reason}"),
            "—".into(),
            "—".into(),
            "report".into(),
            "—".into(),
        ]);
    } else {
        let c11y_words = fmt_int(f(&explore["contextionary_words"]));
        let c11y_what = if explore["contextionary_is_full"].as_bool() == Some(true) {
            format!("full GloVe, {c11y_words} words")
        } else {
            format!("TEST SLICE of {c11y_words} words, not the full contextionary")
        };
        let im = &explore["import"];
        let base = &explore["baseline_import"];
        let rate = f(&im["things_per_s"]);
        let import_ok = rate >= 20_000.0 && im["errors"].as_u64() == Some(0);
        explore_goals.push(("explore_import_with_vectors_ge_20000_per_s", import_ok));
        rows.push([
            format!(
                "batch import with vectors into embedded (durable; {} things of Doc, {} per batch, {} in flight; contextionary: {c11y_what})",
                fmt_int(f(&im["objects"])),
                im["batch"],
                im["connections"]
            ),
            format!("{} things/s, {} errors", fmt_int(rate), im["errors"]),
            format!(
                "{} things/s without a contextionary (no vectors), {} errors",
                fmt_int(f(&base["things_per_s"])),
                base["errors"]
            ),
            format!("{:.2} of the baseline", rate / f(&base["things_per_s"])),
            "≥ 20,000/s".into(),
            met(Some(import_ok)).into(),
        ]);
        let connections = &explore["connections"];
        for (key, name, qps_goal) in [
            ("explore", "GraphQL `Explore` top-10", Some(1000.0)),
            (
                "explore_filtered",
                "GraphQL `Get … explore` top-10, `where` bucket = 7 (1% of the class)",
                None,
            ),
        ] {
            let e = &explore[key];
            let (qps, recall) = (f(&e["queries_per_s"]), f(&e["recall_at_10"]));
            let errors = e["errors"].as_u64().unwrap_or(u64::MAX);
            let recall_ok = recall >= 0.95;
            let qps_ok = qps_goal.is_none_or(|g| qps >= g) && errors == 0;
            explore_goals.push((
                if key == "explore" {
                    "explore_recall_at_10_ge_0_95"
                } else {
                    "explore_filtered_recall_at_10_ge_0_95"
                },
                recall_ok,
            ));
            explore_goals.push((
                if key == "explore" {
                    "explore_ge_1000_queries_per_s_no_errors"
                } else {
                    "explore_filtered_no_errors"
                },
                qps_ok,
            ));
            rows.push([
                format!(
                    "{name}, {} things, {connections} connections, {} queries of 100 words",
                    fmt_int(f(&im["objects"])),
                    e["throughput"]["requests"]
                ),
                format!(
                    "{} q/s (p50 {:.2} ms, p99 {:.2} ms), {errors} errors; recall@10 {recall:.4}",
                    fmt_int(qps),
                    f(&e["throughput"]["p50_ms"]),
                    f(&e["throughput"]["p99_ms"])
                ),
                "exact top-10, brute force in weft-bench".into(),
                format!(
                    "certainty within {:.1e} of exact",
                    f(&e["max_certainty_difference"])
                ),
                match qps_goal {
                    Some(g) => format!("≥ {} q/s, recall ≥ 0.95", fmt_int(g)),
                    None => "recall ≥ 0.95".into(),
                },
                met(Some(recall_ok && qps_ok)).into(),
            ]);
        }
    }

    let mut goals = vec![
        plugin_ok.unwrap_or(false),
        get_ok,
        import_ok,
        e_import_ok,
        graphql_errors == 0,
    ];
    goals.extend(hnsw_equal_recall_ok);
    goals.extend(explore_goals.iter().map(|(_, ok)| *ok));
    let all_met = goals.iter().all(|g| *g);
    println!();
    println!("Machine: {}", crate::machine::line(&machine));
    println!();
    println!("| measure | result | baseline (same run) | ratio | goal | met |");
    println!("|---|---|---|---|---|---|");
    for r in &rows {
        println!("| {} |", r.join(" | "));
    }
    println!();
    if graphql_errors > 0 {
        println!(
            "GraphQL queries answered {graphql_errors} errors (see server.json, server-embedded.json)"
        );
    }
    if !timings.is_empty() {
        println!(
            "Wall time: {}",
            timings
                .iter()
                .map(|(k, v)| format!("{k} {v:.0} s"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    println!(
        "Goals: {} of {} met{}",
        goals.iter().filter(|g| **g).count(),
        goals.len(),
        if all_met { "" } else { " (exit code 1)" }
    );
    let results = json!({
        "machine": machine,
        "unix_time": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        "timings_s": timings.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "goals": {
            "plugin_so_vs_static_le_1_10": plugin_ok,
            "rest_get_ge_0_5_of_ceiling_no_errors": get_ok,
            "batch_import_ge_50000_per_s": import_ok,
            "embedded_batch_import_ge_20000_per_s": e_import_ok,
            "graphql_no_errors": graphql_errors == 0,
            "contextionary_hnsw_weft_le_faiss_at_equal_recall": hnsw_equal_recall_ok,
            "explore": explore_goals.iter().map(|(k, ok)| (k.to_string(), json!(ok))).collect::<serde_json::Map<_, _>>(),
            "all_met": all_met,
        },
        "table": rows.iter().map(|r| json!(r)).collect::<Vec<_>>(),
        "plugin_call": plugin,
        "server": server,
        "server_embedded": embedded,
        "contextionary": c11y,
        "contextionary_faiss": faiss,
        "explore": explore,
    });
    let out = a.dir.join("results.json");
    crate::output::write_json(&out, &results)?;
    println!("Written: {}", out.display());
    Ok(all_met)
}

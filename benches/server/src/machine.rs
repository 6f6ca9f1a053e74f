//! The machine a result was measured on.

use serde_json::{json, Value};

fn first_line_with(file: &str, prefix: &str) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    let line = text.lines().find(|l| l.starts_with(prefix))?;
    Some(line.split_once(':')?.1.trim().to_string())
}

/// nproc, CPU model, memory, kernel, load average.
pub fn info() -> Value {
    json!({
        "nproc": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "cpu_model": first_line_with("/proc/cpuinfo", "model name").unwrap_or_else(|| "unknown".into()),
        "memory": first_line_with("/proc/meminfo", "MemTotal").unwrap_or_default(),
        "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim(),
        "load_average": std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    })
}

/// One line: `2 × Intel(R) Xeon(R) Processor, 24 GB, Linux 6.1, load 0.52 0.40 0.33`.
pub fn line(m: &Value) -> String {
    format!(
        "nproc {} · {} · MemTotal {} · Linux {} · load average {}",
        m["nproc"],
        m["cpu_model"].as_str().unwrap_or(""),
        m["memory"].as_str().unwrap_or(""),
        m["kernel"].as_str().unwrap_or(""),
        m["load_average"].as_str().unwrap_or("")
    )
}

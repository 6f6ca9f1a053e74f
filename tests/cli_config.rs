//! `weft serve` with a bad configuration stops at once with one line naming what to fix.
use std::process::Command;

use weft_e2e_tests::{build_dir, weft_bin};

fn serve_with(config: &str, extra: &[&str]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("weft.json");
    std::fs::write(&file, config).unwrap();
    let mut child = Command::new(weft_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--plugin-dir"])
        .arg(build_dir())
        .arg("--config-file")
        .arg(&file)
        .args(extra)
        // Anything the server stores stays in the temporary directory.
        .current_dir(dir.path())
        .env("WEFT_LOG", "error")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A configuration that is not refused would serve forever: give up after 30 s.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("weft served with a configuration it should have refused: {config}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
    )
}

fn one_line(stderr: &str) -> &str {
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("weft:")).collect();
    assert_eq!(lines.len(), 1, "expected one line, got:\n{stderr}");
    lines[0]
}

#[test]
fn a_misspelt_key_is_named_with_its_path() {
    let (code, err) = serve_with(r#"{"environments":[{"name":"default","databse":{}}]}"#, &[]);
    assert_ne!(code, 0);
    let line = one_line(&err);
    assert!(line.contains("environments[0].databse"), "{line}");
    assert!(line.contains("unknown field"), "{line}");
}

#[test]
fn a_bad_value_is_named_with_its_key() {
    let (code, err) = serve_with(r#"{"environments":[{"name":"default","limit":0}]}"#, &[]);
    assert_ne!(code, 0);
    assert!(one_line(&err).contains("key limit"), "{err}");
    let (code, err) = serve_with(
        r#"{"environments":[{"name":"default","auth":{"root_key":"nope","root_token":"x"}}]}"#,
        &[],
    );
    assert_ne!(code, 0);
    assert!(one_line(&err).contains("auth.root_key"), "{err}");
}

#[test]
fn an_unknown_environment_lists_the_known_ones() {
    let (code, err) = serve_with(
        r#"{"environments":[{"name":"alpha"},{"name":"beta"}]}"#,
        &["--config", "gamma"],
    );
    assert_ne!(code, 0);
    let line = one_line(&err);
    assert!(
        line.contains("\"gamma\"") && line.contains("alpha") && line.contains("beta"),
        "{line}"
    );
}

#[test]
fn a_plugin_of_the_wrong_kind_or_name_is_refused() {
    let (code, err) = serve_with(
        r#"{"environments":[{"name":"default","database":{"name":"mongodb"}}]}"#,
        &[],
    );
    assert_ne!(code, 0);
    let line = one_line(&err);
    assert!(
        line.contains("no connector plugin named \"mongodb\""),
        "{line}"
    );
    let (code, err) = serve_with(
        r#"{"environments":[{"name":"default","contextionary":{"name":"dev-memory"}}]}"#,
        &[],
    );
    assert_ne!(code, 0);
    assert!(
        one_line(&err).contains("is a connector, but a contextionary is needed"),
        "{err}"
    );
}

//! `weft plugins check FILE…` against real files: one line per file, exit code 0 only when all load.
use std::process::Command;

use weft_e2e_tests::*;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn check(files: &[&std::path::Path]) -> Run {
    let out = Command::new(weft_bin())
        .arg("plugins")
        .arg("check")
        .args(files)
        .env_remove("WEFT_LOG")
        .output()
        .expect("run weft");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn error_lines(r: &Run) -> Vec<&str> {
    r.stdout
        .lines()
        .filter(|l| l.starts_with("error:"))
        .collect()
}

#[test]
fn dev_memory_plugin_checks_ok() {
    let so = dev_memory_so();
    let r = check(&[&so]);
    assert_eq!(r.code, 0, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    let first = r.stdout.lines().next().unwrap_or_default();
    assert!(first.starts_with("ok: "), "{first}");
    assert!(first.contains("name=dev-memory"), "{first}");
    assert!(first.contains("kind=connector"), "{first}");
    assert!(
        first.contains(&format!("interface={}", weft_plugin_api::INTERFACE_VERSION)),
        "{first}"
    );
    assert!(first.contains("capabilities=history,filter"), "{first}");
}

#[test]
fn other_major_interface_is_refused_in_one_line_naming_both_versions() {
    let so = fixture_so("interface-2-0");
    let r = check(&[&so]);
    assert_ne!(r.code, 0);
    let errors = error_lines(&r);
    assert_eq!(errors.len(), 1, "{}", r.stdout);
    let line = errors[0];
    assert!(line.contains("weft-plugin-api 2.0.0"), "{line}");
    assert!(
        line.contains(&format!(
            "this host speaks {}",
            weft_plugin_api::INTERFACE_VERSION
        )),
        "{line}"
    );
    assert!(line.contains("rebuild"), "{line}");
    // abi_stable's multi-kilobyte layout dump stays out of normal output.
    assert!(
        r.stdout.len() + r.stderr.len() < 600,
        "{}{}",
        r.stdout,
        r.stderr
    );
}

#[test]
fn a_file_that_is_not_a_library_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("hostname");
    std::fs::write(&text, "not a library\n").unwrap();
    let mut files = vec![text.clone()];
    if std::path::Path::new("/etc/hostname").exists() {
        files.push("/etc/hostname".into());
    }
    let refs: Vec<&std::path::Path> = files.iter().map(|p| p.as_path()).collect();
    let r = check(&refs);
    assert_ne!(r.code, 0);
    let errors = error_lines(&r);
    assert_eq!(errors.len(), files.len(), "{}", r.stdout);
    for (line, f) in errors.iter().zip(&files) {
        assert!(line.contains(&f.display().to_string()), "{line}");
        assert!(line.contains("not a loadable shared library"), "{line}");
    }
}

#[test]
fn a_shared_library_without_a_root_module_is_refused() {
    // A real shared library that is not a Weft plugin: the test binary's own libstd is not
    // separate, so build-free: use the fixture build's C-ABI check by loading libc via its path.
    let libc = [
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/usr/lib/x86_64-linux-gnu/libc.so.6",
        "/lib64/libc.so.6",
    ]
    .into_iter()
    .map(std::path::Path::new)
    .find(|p| p.exists());
    let Some(libc) = libc else {
        eprintln!("no libc.so.6 at a known path; nothing to check");
        return;
    };
    let r = check(&[libc]);
    assert_ne!(r.code, 0);
    let line = error_lines(&r).join("\n");
    assert!(line.contains("not a Weft plugin"), "{line}");
}

#[test]
fn a_missing_path_is_refused() {
    let r = check(&[std::path::Path::new("/no/such/plugin.so")]);
    assert_ne!(r.code, 0);
    let line = error_lines(&r).join("\n");
    assert!(line.contains("/no/such/plugin.so"), "{line}");
    assert!(line.contains("no such file"), "{line}");
}

#[test]
fn two_files_declaring_one_name_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.so");
    let b = dir.path().join("b.so");
    std::fs::copy(dev_memory_so(), &a).unwrap();
    std::fs::copy(dev_memory_so(), &b).unwrap();
    let r = check(&[&a, &b]);
    assert_ne!(r.code, 0);
    assert!(
        r.stdout
            .lines()
            .next()
            .unwrap_or_default()
            .starts_with("ok: "),
        "{}",
        r.stdout
    );
    let errors = error_lines(&r);
    assert_eq!(errors.len(), 1, "{}", r.stdout);
    assert!(errors[0].contains("\"dev-memory\""), "{}", errors[0]);
    assert!(
        errors[0].contains(&a.display().to_string()),
        "{}",
        errors[0]
    );
    assert!(
        errors[0].contains(&b.display().to_string()),
        "{}",
        errors[0]
    );
}

#[test]
fn a_layout_mismatch_is_one_line_and_the_dump_goes_to_the_debug_log() {
    let so = fixture_so("layout-change");
    let r = check(&[&so]);
    assert_ne!(r.code, 0);
    let errors = error_lines(&r);
    assert_eq!(errors.len(), 1, "{}", r.stdout);
    assert!(errors[0].contains("their types differ"), "{}", errors[0]);
    assert!(
        r.stdout.len() + r.stderr.len() < 600,
        "{}{}",
        r.stdout,
        r.stderr
    );

    let out = Command::new(weft_bin())
        .args(["plugins", "check"])
        .arg(&so)
        .env("WEFT_LOG", "debug")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.len() > 5_000,
        "expected abi_stable's layout dump in the debug log, got {} bytes",
        log.len()
    );
    assert!(log.contains("ConnectorModule"), "{log}");
}

//! Logs that go to a pipe or a file (what log collectors read) carry no ANSI escape codes, in either format: the
//! operator binary (built as leader_fencing.rs builds it, see [`common::operator_binary`]).
mod common;

use std::process::{Command, Stdio};

/// Runs `run` with no Kubernetes configuration reachable: it logs "starting" and an error, then exits.
fn logs_of(args: &[&str]) -> Vec<u8> {
    let out = Command::new(common::operator_binary())
        .arg("run")
        .args(args)
        .args(["--no-webhook", "--health-addr=127.0.0.1:0", "--metrics-addr=127.0.0.1:0"])
        .env_remove("NO_COLOR")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT")
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env("HOME", "/nonexistent")
        .env("RUST_LOG", "info")
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("the operator binary runs");
    let mut all = out.stdout;
    all.extend_from_slice(&out.stderr);
    all
}

fn assert_no_escape(format: &str) {
    let logs = logs_of(&[&format!("--log-format={format}")]);
    let text = String::from_utf8_lossy(&logs);
    assert!(text.contains("starting"), "{format}: the binary logged nothing recognisable:\n{text}");
    assert!(!logs.contains(&0x1b), "{format} logs to a pipe carry ANSI escape codes:\n{text:?}");
}

#[test]
fn text_logs_to_a_pipe_are_not_coloured() {
    assert_no_escape("text");
}

#[test]
fn json_logs_to_a_pipe_are_not_coloured() {
    assert_no_escape("json");
    // and every line is JSON
    for line in String::from_utf8_lossy(&logs_of(&["--log-format=json"])).lines().filter(|l| l.starts_with('{')) {
        serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    }
}

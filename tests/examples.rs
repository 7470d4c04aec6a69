//! The examples compile (cargo builds them for `cargo test`) and run to success: they are documentation that
//! cannot rot.

// Test helpers fail loudly (clippy's allow-in-tests covers only #[test] functions).
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;

fn example(name: &str) -> PathBuf {
    // target/<profile>/deps/examples-<hash> → target/<profile>/examples/<name>
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    profile_dir.join("examples").join(name)
}

fn run(name: &str, args: &[&str]) -> String {
    let path = example(name);
    assert!(
        path.exists(),
        "example binary {} missing (cargo test builds examples)",
        path.display()
    );
    let output = Command::new(&path).args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{name} failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn embedded_memory_example_runs_the_tenancy_domain() {
    let out = run("embedded_memory", &[]);
    assert!(out.contains("tenant Acme Corp (acme-corp) is active"), "{out}");
    assert!(out.contains("audit chain verified"), "{out}");
}

#[test]
fn axum_embedded_example_serves_next_to_the_host_routes() {
    let out = run("axum_embedded", &["--check"]);
    assert!(out.contains("GET /avb/api/v2/tenants/me -> 200"), "{out}");
}

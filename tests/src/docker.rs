//! The Docker engine in tests: a `FROM scratch` image of the tests' static tiny-http (no
//! image can be pulled here), and what the engine says about a task's containers.

use std::path::PathBuf;
use std::process::Command;

/// The tiny-http image the Docker job tests run.
pub const IMAGE: &str = "rabble-test/tiny-http:1";

/// Builds the image (again on every call: `docker build` is quick with its cache).
pub fn image() {
    let static_bin =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/x86_64-unknown-linux-musl/debug/tiny-http");
    assert!(static_bin.exists(), "{} is missing: bash .ci/test builds it", static_bin.display());
    let ctx = tempfile::tempdir().unwrap();
    std::fs::copy(&static_bin, ctx.path().join("tiny-http")).unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM scratch\nCOPY tiny-http /tiny-http\nENTRYPOINT [\"/tiny-http\"]\n",
    )
    .unwrap();
    let out = Command::new("docker")
        .args(["build", "-q", "-t", IMAGE])
        .arg(ctx.path())
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .unwrap();
    assert!(out.status.success(), "docker build: {}", String::from_utf8_lossy(&out.stderr));
}

/// The running containers of an allocation (by the label the agent gives them).
pub fn containers(alloc_label: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args(["ps", "-q", "--no-trunc", "--filter", &format!("label=rabble.alloc={alloc_label}")])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
}

/// When a container last started (changes when it restarts).
pub fn started_at(id: &str) -> String {
    let out = Command::new("docker").args(["inspect", "-f", "{{.State.StartedAt}}", id]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Removes an allocation's containers when dropped (they outlive their agent by design), so
/// a failed test leaves no container holding a host port another test's task will want.
#[derive(Debug)]
pub struct RemoveOnDrop(pub String);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let out = Command::new("docker")
            .args(["ps", "-aq", "--no-trunc", "--filter", &format!("label=rabble.alloc={}", self.0)])
            .output();
        let ids: Vec<String> =
            out.map(|o| String::from_utf8_lossy(&o.stdout).lines().map(str::to_owned).collect()).unwrap_or_default();
        if !ids.is_empty() {
            let _ = Command::new("docker").args(["rm", "-f"]).args(&ids).output();
        }
    }
}

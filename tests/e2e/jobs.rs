//! Jobs from the operator's side: `rabble job ...` on real job files.

use rabble_tests::bin;
use std::path::PathBuf;
use std::process::Command;

fn job_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/jobs").join(name)
}

#[test]
fn job_validate_accepts_real_files_and_places_every_mistake() {
    for f in ["plex.nomad.hcl", "traefik.nomad.hcl", "cleanup.nomad.hcl", "backup.nomad.hcl"] {
        let out = Command::new(bin("rabble")).args(["job", "validate"]).arg(job_file(f)).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{f}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.starts_with("Job validation successful"), "{f}: {stdout}");
    }
    // Nomad's single-dash flags, and the job as JSON.
    let out = Command::new(bin("rabble"))
        .args(["job", "validate", "-var", "image=plex:beta", "-json"])
        .arg(job_file("plex.nomad.hcl"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let job: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(job["groups"][0]["tasks"][0]["config"]["image"], "plex:beta");
    // A template block: refused with its place, unless -ignore-unsupported.
    let file = job_file("grafana-template.nomad.hcl");
    let out = Command::new(bin("rabble")).args(["job", "validate"]).arg(&file).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("grafana-template.nomad.hcl:13:7:") && stderr.contains("> template"), "{stderr}");
    let out = Command::new(bin("rabble")).args(["job", "validate", "-ignore-unsupported"]).arg(&file).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ignored:"));
}

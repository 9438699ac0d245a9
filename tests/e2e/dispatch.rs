//! Parameterized jobs end to end, as the seed's render farm would use them: children
//! dispatched by `rabble job dispatch` (meta, a payload from stdin) and by python-nomad's
//! `dispatch_job` queue while no node has room (one static port per node: one frame at a
//! time on each of two agents), start oldest first as room frees, and find their payload
//! in `local/` and their meta in `NOMAD_META_*`. A dispatch that breaks the job's rules
//! is refused with the rule named. Everything runs here: a real hub, two real agents.

use rabble_shared::api::JobView;
use rabble_tests::{Agent, Hub, bin, tool, wait_for};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

const FRAMES: usize = 6;

fn render_job(out: &std::path::Path) -> String {
    format!(
        r#"job "render" {{
  type = "batch"
  parameterized {{
    payload       = "required"
    meta_required = ["frame"]
  }}
  group "g" {{
    network {{
      port "slot" {{ static = 23117 }}
    }}
    task "frame" {{
      driver = "raw_exec"
      config {{
        command = "/bin/sh"
        args    = ["-c", "echo $NOMAD_META_frame $(cat local/in/scene.txt) >> {out}; sleep 1"]
      }}
      dispatch_payload {{ file = "in/scene.txt" }}
      resources {{ memory = 16 }}
    }}
  }}
}}
"#,
        out = out.display()
    )
}

fn cli_dispatch(hub: &Hub, frame: usize) -> Result<String, String> {
    let mut child = Command::new(bin("rabble"))
        .args(["job", "dispatch", "-meta", &format!("frame={frame}"), "render", "-"])
        .env("RABBLE_ADDR", &hub.http)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(format!("scene-{frame}").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(text);
    }
    text.trim().strip_prefix("Dispatched Job ID = ").map(str::to_owned).ok_or(text)
}

#[test]
fn dispatched_frames_queue_and_drain_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hub = Hub::start(d, &[]);
    let _a = Agent::worker(d, &hub, "pi1");
    let _b = Agent::worker(d, &hub, "pi2");
    let out = d.join("frames.txt");
    hub.run_job(&d.join("render.nomad.hcl"), &render_job(&out));

    // The rules: a payload and the frame are required; unknown meta is refused.
    let bad =
        Command::new(bin("rabble")).args(["job", "dispatch", "render"]).env("RABBLE_ADDR", &hub.http).output().unwrap();
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("requires a payload"));
    let bad = Command::new(bin("rabble"))
        .args(["job", "dispatch", "-meta", "frame=1", "-meta", "colour=red", "render", "/etc/hostname"])
        .env("RABBLE_ADDR", &hub.http)
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success() && e.contains("meta not allowed") && e.contains("colour"), "{e}");

    // Frames dispatched fast: most of them must wait.
    let mut ids = vec![];
    for frame in 0..FRAMES - 1 {
        ids.push(cli_dispatch(&hub, frame).unwrap());
    }
    // The last through Nomad's API, as python-nomad sends it.
    let port = hub.http.rsplit(':').next().unwrap().to_owned();
    let script = format!(
        r#"
import nomad, base64
n = nomad.Nomad(host="127.0.0.1", port={port}, timeout=30)
r = n.job.dispatch_job("render", payload=base64.b64encode(b"scene-{last}").decode(), meta={{"frame": "{last}"}})
print(r["DispatchedJobID"])
"#,
        last = FRAMES - 1
    );
    let py = Command::new(tool("python3")).arg("-c").arg(&script).output().unwrap();
    assert!(py.status.success(), "{}", String::from_utf8_lossy(&py.stderr));
    ids.push(String::from_utf8_lossy(&py.stdout).trim().to_owned());
    assert!(ids.iter().all(|i| i.starts_with("render/dispatch-")), "{ids:?}");

    let queued = wait_for("a queue while both nodes are busy", Duration::from_secs(10), || {
        let v: JobView = hub.get("/api/v1/jobs/render").unwrap();
        let q = v.queue.ok_or("no queue on a parameterized job")?;
        if q.queued >= 1 && q.running == 2 { Ok(q) } else { Err(format!("{q:?}")) }
    });
    println!("queue while busy: {queued:?}");
    let done = wait_for("every frame rendered", Duration::from_secs(60), || {
        let v: JobView = hub.get("/api/v1/jobs/render").unwrap();
        let q = v.queue.unwrap_or_default();
        if q.complete as usize == FRAMES { Ok(q) } else { Err(format!("{q:?}")) }
    });
    assert_eq!((done.queued, done.running, done.failed), (0, 0, 0));
    let lines = std::fs::read_to_string(&out).unwrap();
    let frames: Vec<(usize, String)> = lines
        .lines()
        .map(|l| {
            let (f, scene) = l.split_once(' ').unwrap();
            (f.parse().unwrap(), scene.to_owned())
        })
        .collect();
    assert_eq!(frames.len(), FRAMES, "{lines}");
    for (f, scene) in &frames {
        assert_eq!(scene, &format!("scene-{f}"), "each frame got its own payload: {lines}");
    }
    // Oldest first: two nodes run two at a time, so a frame starts at most one place
    // from where it was dispatched.
    for (rank, (f, _)) in frames.iter().enumerate() {
        assert!(rank.abs_diff(*f) <= 1, "frame {f} ran {rank}th: {lines}");
    }
    // The CLI shows the queue.
    let st =
        Command::new(bin("rabble")).args(["job", "status", "render"]).env("RABBLE_ADDR", &hub.http).output().unwrap();
    let st = String::from_utf8_lossy(&st.stdout);
    assert!(st.contains(&format!("Dispatched    = 0 queued, 0 running, {FRAMES} complete, 0 failed")), "{st}");
}

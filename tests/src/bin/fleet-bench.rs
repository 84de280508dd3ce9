//! The fleet benchmark (`scripts/bench-fleet`): N namespace hosts (default
//! 20) rolled out with the collection's playbook, canary then batches,
//! beside the same rollout in one batch; per batch its time, and the
//! requests and bytes the release API and the mirror served; beside an
//! unpinned `check` on every host (what a fleet without a pin file asks
//! the API). Needs root, the fixtures and Ansible (`scripts/setup`).
#![allow(clippy::print_stdout, clippy::print_stderr)]
// Counts of requests, bytes and hosts, far below 2^52.
#![allow(clippy::cast_precision_loss)]

use std::process::Command;

use obs_upgrade_tests::e2e::ROOT;
use obs_upgrade_tests::fleet::{self, COMPONENTS, Fleet};
use obs_upgrade_tests::{bin, e2e};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map_or(20, |a| a.parse().expect("the number of hosts"));
    if let Some(why) = fleet::unavailable() {
        eprintln!("fleet-bench: {why}");
        std::process::exit(2);
    }
    let t = std::time::Instant::now();
    let f = Fleet::boot(n, &[]);
    println!("booted {n} hosts in {:.1} s", t.elapsed().as_secs_f64());

    // What an unpinned fleet asks upstream: one check per host.
    let before = f.api_requests();
    let obs = bin("obs-upgrade");
    for h in &f.hosts {
        let inside = h.ns.stage_file(&obs);
        let o = Command::new("nsenter")
            .args(["-t", &h.ns.pid.to_string(), "-a"])
            .arg(&inside)
            .args(["--root", ROOT, "check"])
            .output()
            .expect("check");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let unpinned = f.api_requests() - before;

    let sets: Vec<String> = COMPONENTS
        .iter()
        .map(|c| format!("{c}={}", e2e::tag_version("trixie", c)))
        .collect();
    let before = f.api_requests();
    let t = std::time::Instant::now();
    let refs: Vec<&str> = sets.iter().map(String::as_str).collect();
    let pins = f.pin("pins.json", &refs);
    let pin_secs = t.elapsed().as_secs_f64();
    let controller_requests = f.api_requests() - before;
    let pins_s = pins.display().to_string();

    let mut rows = Vec::new();
    for (label, batches) in [
        ("canary, 25%, rest", r#"[1, "25%", "100%"]"#),
        ("one batch (baseline)", r#"["100%"]"#),
    ] {
        let (req0, bytes0) = f.mirror.served();
        let api0 = f.api_requests();
        let dir = f
            .controller
            .join(label.replace([' ', ',', '%', '(', ')'], "_"));
        let dir_s = dir.display().to_string();
        let (ok, out, marks) = f.playbook_timed(
            "rollout",
            &[
                ("obs_upgrade_pins_src", &pins_s),
                ("obs_upgrade_report_dir", &dir_s),
                ("obs_upgrade_batches", batches),
            ],
            "PLAY [Upgrade the fleet",
        );
        assert!(ok, "{out}");
        let (req1, bytes1) = f.mirror.served();
        let api1 = f.api_requests();
        let batch_secs: Vec<f64> = marks.windows(2).map(|w| w[1] - w[0]).collect();
        let total = marks.last().copied().unwrap_or_default();
        rows.push((
            label,
            batch_secs,
            total,
            req1 - req0,
            bytes1 - bytes0,
            api1 - api0,
        ));
        for h in &f.hosts {
            for c in COMPONENTS {
                assert!(
                    h.wait_version(c, &e2e::tag_version("trixie", c)),
                    "{}: {c}",
                    h.name
                );
            }
        }
        let (ok, out) = f.playbook("rollback", &[("obs_upgrade_report_dir", &dir_s)], false);
        assert!(ok, "{out}");
        // The rollback holds the components: release them, and drop the
        // staged new versions so that the next round downloads them again.
        for h in &f.hosts {
            for c in COMPONENTS {
                let _ = h.obs(&["hold", "release", c]);
                let v = e2e::tag_version("trixie", c);
                let _ = std::fs::remove_dir_all(h.root(&format!("opt/obs-upgrade/{c}/{v}")));
                let _ = std::fs::remove_dir_all(h.root("var/cache/obs-upgrade/downloads"));
            }
        }
    }

    println!("\nfleet of {n} hosts, {} components each", COMPONENTS.len());
    println!(
        "pin on the controller: {pin_secs:.1} s, {controller_requests} release API requests \
         (one listing per repository)"
    );
    println!(
        "an unpinned check on every host: {unpinned} release API requests ({:.1} per host)",
        unpinned as f64 / n as f64
    );
    println!(
        "\n{:<22} {:>8} {:>30} {:>10} {:>12} {:>10}",
        "ROLLOUT", "TOTAL s", "PER BATCH s", "MIRROR req", "MIRROR bytes", "API req"
    );
    for (label, batches, total, req, bytes, api) in &rows {
        let per: Vec<String> = batches.iter().map(|b| format!("{b:.1}")).collect();
        println!(
            "{label:<22} {total:>8.1} {:>30} {req:>10} {bytes:>12} {api:>10}",
            per.join(" / ")
        );
    }
    if let [(_, _, staged, ..), (_, _, base, ..)] = rows.as_slice() {
        println!(
            "\ncanary and batches / one batch: {:.2}x the time",
            staged / base
        );
    }
    let bytes_per_host = rows[0].4 as f64 / n as f64;
    println!("mirror bytes per host: {bytes_per_host:.0}");
}

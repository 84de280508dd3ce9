//! `hold` and `quarantine`: arguments → options → one library call → render.

use anyhow::Result;
use upgrade_cli::host::Host;
use upgrade_cli::ops::{self, MemoryReport};
use upgrade_core::version::Version;

use crate::args::{Global, HoldCmd, QuarantineCmd};
use crate::exit;
use crate::render::{self, Table};

pub fn hold(g: &Global, host: &Host, c: &HoldCmd) -> Result<u8> {
    match c {
        HoldCmd::Add { component, reason } => {
            let hold = ops::hold(host, component, reason.as_deref())?;
            if g.json {
                render::json("hold", &hold)?;
            } else {
                outln!("{component} is held at {}: {}", hold.version, hold.reason);
            }
        }
        HoldCmd::Release { component } => {
            let gone = ops::unhold(host, component)?;
            if g.json {
                render::json("hold-release", &serde_json::json!({ "released": gone }))?;
            } else if let Some(h) = gone {
                outln!("{component} is no longer held (it was at {})", h.version);
            } else {
                outln!("{component} was not held; nothing changed");
            }
        }
        HoldCmd::List => list(g, &ops::memory(host)?)?,
    }
    Ok(exit::OK)
}

pub fn unmanage(g: &Global, host: &Host, component: &str) -> Result<u8> {
    let r = ops::unmanage(host, component)?;
    if g.json {
        render::json("unmanage", &r)?;
    } else if let Some(d) = &r.drop_in {
        outln!("removed {d}; {} runs its own ExecStart again", r.unit);
        for l in &r.links {
            outln!("removed the link {l}");
        }
        if r.restarted {
            outln!("restarted {}", r.unit);
        }
    } else {
        outln!("{} has no obs-upgrade drop-in; nothing changed", r.unit);
    }
    Ok(exit::OK)
}

pub fn quarantine(g: &Global, host: &Host, c: &QuarantineCmd) -> Result<u8> {
    match c {
        QuarantineCmd::List => list(g, &ops::memory(host)?)?,
        QuarantineCmd::Clear { component, release } => {
            let version = release
                .as_deref()
                .map(Version::parse)
                .transpose()
                .map_err(|e| upgrade_cli::Error::Usage(format!("version: {e}")))?;
            let gone = ops::quarantine_clear(host, component, version.as_ref())?;
            if g.json {
                render::json("quarantine-clear", &serde_json::json!({ "cleared": gone }))?;
            } else if gone.is_empty() {
                outln!("no failed release of {component} is remembered; nothing changed");
            } else {
                let list: Vec<String> = gone.iter().map(ToString::to_string).collect();
                outln!("{component} {} may be planned again", list.join(", "));
            }
        }
    }
    Ok(exit::OK)
}

fn list(g: &Global, m: &MemoryReport) -> Result<()> {
    if g.json {
        return render::json("holds", m);
    }
    if m.holds.holds.is_empty() && m.holds.bad.is_empty() {
        outln!("No holds, and no release failed here.");
        return Ok(());
    }
    let mut t = Table::new(&["COMPONENT", "VERSION", "KIND", "SINCE", "WHY"]);
    for (name, h) in &m.holds.holds {
        let since = h.at.round(jiff::Unit::Second).unwrap_or(h.at).to_string();
        let why = format!("{} (by {})", h.reason, h.by);
        t.row(vec![
            name.clone(),
            h.version.to_string(),
            "held".into(),
            since,
            why,
        ]);
    }
    for (name, list) in &m.holds.bad {
        for b in list {
            let since = b.at.round(jiff::Unit::Second).unwrap_or(b.at).to_string();
            let why = format!("run {}: {}", b.run_id, b.reason);
            t.row(vec![
                name.clone(),
                b.version.to_string(),
                "failed here".into(),
                since,
                why,
            ]);
        }
    }
    t.print()?;
    Ok(())
}

//! Unit files as systemd reads them: the fragment from the standard
//! directories, its drop-ins (`<unit>.d/*.conf`, later names winning), the
//! effective `ExecStart=` (an empty one resets), and the drop-in obs-upgrade
//! writes to run its managed link instead of a binary it must not touch.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The drop-in obs-upgrade owns: named to sort after an operator's own
/// drop-ins, so that its `ExecStart=` is the one in force.
pub const DROP_IN: &str = "zz-obs-upgrade.conf";

/// Where systemd looks for system units, highest priority first (host paths).
pub const UNIT_DIRS: [&str; 5] = [
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
];

/// A unit's files: its fragment and drop-ins, in the order systemd applies them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitFiles {
    /// The unit file.
    pub fragment: Option<PathBuf>,
    /// Its drop-ins, sorted by file name.
    pub drop_ins: Vec<PathBuf>,
}

impl UnitFiles {
    /// Finds `unit` in `dirs` (highest priority first): the first fragment,
    /// and every `<unit>.d/*.conf`, one per file name (a higher-priority
    /// directory's file masks a lower one's), sorted by file name.
    pub fn find(dirs: &[PathBuf], unit: &str) -> UnitFiles {
        let fragment = dirs.iter().map(|d| d.join(unit)).find(|p| p.is_file());
        let mut by_name: BTreeMap<std::ffi::OsString, PathBuf> = BTreeMap::new();
        for d in dirs.iter().rev() {
            let Ok(entries) = std::fs::read_dir(d.join(format!("{unit}.d"))) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name();
                if Path::new(&name).extension().is_some_and(|x| x == "conf") {
                    by_name.insert(name, e.path());
                }
            }
        }
        UnitFiles {
            fragment,
            drop_ins: by_name.into_values().collect(),
        }
    }

    /// The files in the order systemd reads them.
    pub fn all(&self) -> impl Iterator<Item = &PathBuf> {
        self.fragment.iter().chain(&self.drop_ins)
    }

    /// The effective `ExecStart=` value as written (unexpanded `$VARS`
    /// kept), reading every file; `None` when none is set. Files that
    /// cannot be read are skipped, as systemd would report them.
    pub fn exec_start(&self) -> Option<String> {
        self.exec_start_except(None)
    }

    /// The same, leaving out one file (the tool's own drop-in).
    pub fn exec_start_except(&self, skip: Option<&Path>) -> Option<String> {
        let mut value = None;
        for f in self.all().filter(|f| Some(f.as_path()) != skip) {
            let Ok(bytes) = upgrade_state::fsutil::read_capped(f, 1 << 20) else {
                continue;
            };
            for v in service_values(&String::from_utf8_lossy(&bytes), "ExecStart") {
                value = (!v.is_empty()).then_some(v);
            }
        }
        value
    }
}

/// Every `key=` value of the `[Service]` section, in order, with line
/// continuations joined and comments skipped.
pub fn service_values(text: &str, key: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_service = false;
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let mut line = line.trim().to_owned();
        while line.ends_with('\\') {
            line.pop();
            line.truncate(line.trim_end().len());
            line.push(' ');
            match lines.next() {
                Some(next) => line.push_str(next.trim()),
                None => break,
            }
        }
        if line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            in_service = line == "[Service]";
            continue;
        }
        if !in_service {
            continue;
        }
        if let Some((k, v)) = line.split_once('=')
            && k.trim() == key
        {
            out.push(v.trim().to_owned());
        }
    }
    out
}

/// The program an `ExecStart=` value runs (its prefixes `-@:+!` dropped).
pub fn program_of(exec_start: &str) -> Option<String> {
    let argv = upgrade_core::endpoint::split_command(exec_start);
    let first = argv.first()?;
    let prog = first.trim_start_matches(['-', '@', ':', '+', '!']);
    (!prog.is_empty()).then(|| prog.to_owned())
}

/// The same command running `program` instead: the prefixes and every
/// argument kept exactly as written (`$ARGS` stays for systemd to expand).
pub fn with_program(exec_start: &str, program: &Path) -> Option<String> {
    let text = exec_start.trim_start();
    let prefix_len = text.len() - text.trim_start_matches(['-', '@', ':', '+', '!']).len();
    let (prefix, rest) = text.split_at(prefix_len);
    let old = program_of(text)?;
    // The program is the first word: quoted or not, it ends at whitespace
    // after its last character.
    let end = if rest.starts_with(['"', '\'']) {
        let q = &rest[..1];
        rest[1..].find(q).map(|i| i + 2)?
    } else {
        rest.find(char::is_whitespace).unwrap_or(rest.len())
    };
    debug_assert!(rest[..end].contains(old.as_str()));
    let program = program.display().to_string();
    if program
        .chars()
        .any(|c| c.is_whitespace() || c == '"' || c == '\\')
    {
        return None;
    }
    Some(format!("{prefix}{program}{}", &rest[end..]))
}

/// The drop-in that makes a unit run `program` with the arguments of
/// `exec_start`, saying why in comments.
pub fn redirect_drop_in(exec_start: &str, program: &Path, why: &str) -> Option<String> {
    let line = with_program(exec_start, program)?;
    let why: String = why.lines().collect::<Vec<_>>().join(" ");
    Some(format!(
        "# Written by obs-upgrade: {why}\n\
         # The unit now runs obs-upgrade's managed link; its own binary is left untouched.\n\
         # To give the unit back: `obs-upgrade unmanage <component>` (or delete this\n\
         # file, run `systemctl daemon-reload` and restart the unit).\n\
         # The command line is copied from the unit: after changing its flags, change\n\
         # them here too (or unmanage, change, and apply again).\n\
         [Service]\nExecStart=\nExecStart={line}\n"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_effective_exec_start_follows_resets_continuations_and_drop_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let etc = dir.path().join("etc");
        let lib = dir.path().join("lib");
        std::fs::create_dir_all(etc.join("x.service.d")).unwrap();
        std::fs::create_dir_all(lib.join("x.service.d")).unwrap();
        std::fs::write(
            lib.join("x.service"),
            "[Unit]\nExecStart=/not/service\n[Service]\nEnvironmentFile=-/etc/default/x\n\
             ExecStart=/usr/bin/prometheus-node-exporter $ARGS\n",
        )
        .unwrap();
        // Files are applied by name; the /etc copy of a name masks /lib's.
        std::fs::write(
            lib.join("x.service.d/20-flags.conf"),
            "[Service]\nExecStart=/masked\n",
        )
        .unwrap();
        std::fs::write(
            etc.join("x.service.d/20-flags.conf"),
            concat!(
                "[Service]\n# ExecStart=/commented\nExecStart=\n",
                "ExecStart=/usr/bin/prometheus-node-exporter \\\n  ",
                "--web.listen-address=127.0.0.2:9111 \\\n  --web.config.file=/etc/x/web.yml\n",
            ),
        )
        .unwrap();
        std::fs::write(
            lib.join("x.service.d/10-env.conf"),
            "[Service]\nExecStart=\nExecStart=/early\n",
        )
        .unwrap();
        std::fs::write(
            lib.join("x.service.d/ignored.txt"),
            "[Service]\nExecStart=/no\n",
        )
        .unwrap();
        let files = UnitFiles::find(&[etc.clone(), lib.clone()], "x.service");
        assert_eq!(files.fragment, Some(lib.join("x.service")));
        assert_eq!(
            files.drop_ins,
            vec![
                lib.join("x.service.d/10-env.conf"),
                etc.join("x.service.d/20-flags.conf")
            ]
        );
        let exec = files.exec_start().unwrap();
        assert_eq!(
            exec,
            "/usr/bin/prometheus-node-exporter --web.listen-address=127.0.0.2:9111 \
             --web.config.file=/etc/x/web.yml"
        );
        assert_eq!(
            program_of(&exec).unwrap(),
            "/usr/bin/prometheus-node-exporter"
        );
        // Only the fragment: its own line, `$ARGS` unexpanded.
        let only = UnitFiles::find(std::slice::from_ref(&lib), "x.service");
        let exec = only.exec_start_except(Some(&lib.join("x.service.d/20-flags.conf")));
        assert_eq!(exec.as_deref(), Some("/early"));
        std::fs::remove_dir_all(lib.join("x.service.d")).unwrap();
        let exec = UnitFiles::find(&[lib], "x.service").exec_start().unwrap();
        assert_eq!(exec, "/usr/bin/prometheus-node-exporter $ARGS");
        // Nothing at all.
        assert_eq!(UnitFiles::find(&[etc], "y.service"), UnitFiles::default());
    }

    #[test]
    fn a_redirect_keeps_prefixes_and_arguments_as_written() {
        let link = Path::new("/usr/local/bin/node_exporter");
        assert_eq!(
            with_program("/usr/bin/prometheus-node-exporter $ARGS", link).unwrap(),
            "/usr/local/bin/node_exporter $ARGS"
        );
        assert_eq!(
            with_program("-\"/opt/my dir/ne\" --a='b c'", link).unwrap(),
            "-/usr/local/bin/node_exporter --a='b c'"
        );
        assert_eq!(
            with_program("/usr/bin/x", link).unwrap(),
            "/usr/local/bin/node_exporter"
        );
        assert!(with_program("/usr/bin/x", Path::new("/a b/x")).is_none());
        let text = redirect_drop_in("/usr/bin/x $ARGS", link, "x is owned by package p").unwrap();
        assert!(
            text.contains("[Service]\nExecStart=\nExecStart=/usr/local/bin/node_exporter $ARGS\n")
        );
        assert!(text.contains("obs-upgrade unmanage"), "{text}");
        assert_eq!(
            service_values(&text, "ExecStart"),
            vec!["", "/usr/local/bin/node_exporter $ARGS"]
        );
    }
}

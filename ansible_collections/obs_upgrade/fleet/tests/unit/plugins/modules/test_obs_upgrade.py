"""Unit tests of the obs_upgrade and fleet_report modules.

Run with `python3 -m unittest discover -s tests/unit -t .` from the
collection's root (scripts/test does). The modules run for real, as
Ansible runs them (a JSON argument file), against a stand-in obs-upgrade
that prints a canned report and records its command line.
"""

import importlib.util
import json
import os
import stat
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
MODULES = os.path.join(HERE, "..", "..", "..", "..", "plugins", "modules")


def load(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(MODULES, name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


obs_upgrade = load("obs_upgrade")
fleet_report = load("fleet_report")

COMPLETED = {
    "schema": "obs-upgrade/run/v1",
    "run_id": "20261122-101500-abcd",
    "status": "COMPLETED",
    "steps": [
        {
            "key": "node_exporter:1.5.0->1.9.0",
            "component": "node_exporter",
            "from": "1.5.0",
            "to": "1.9.0",
            "status": {"status": "completed"},
            "message": None,
        }
    ],
    "notes": [],
}

ROLLED_BACK = {
    "schema": "obs-upgrade/run/v1",
    "run_id": "20261122-101600-beef",
    "status": "ROLLED_BACK",
    "steps": [
        {
            "component": "node_exporter",
            "from": "1.5.0",
            "to": "1.9.1",
            "status": {"status": "rolled_back"},
            "message": "health check failed: the unit is not active",
        }
    ],
}


class CommandLine(unittest.TestCase):
    def params(self, **kw):
        p = {
            "command": "apply",
            "run_id": None,
            "binary": "/usr/local/bin/obs-upgrade",
            "root": "/",
            "config": None,
            "pins": None,
            "mirror": None,
            "unit_dir": None,
            "service_manager": "auto",
            "wait_lock": 0,
        }
        p.update(kw)
        return p

    def test_apply_approves_and_check_mode_is_a_dry_run(self):
        cmd = obs_upgrade.build_command(self.params(), False)
        self.assertEqual(cmd[-2:], ["apply", "--yes"])
        self.assertIn("--json", cmd)
        cmd = obs_upgrade.build_command(self.params(), True)
        self.assertEqual(cmd[-3:], ["apply", "--yes", "--dry-run"])

    def test_options_become_global_flags_and_rollback_takes_the_run(self):
        cmd = obs_upgrade.build_command(
            self.params(
                command="rollback",
                run_id="r1",
                pins="/etc/p.json",
                mirror="http://ctl:8080",
                unit_dir="/run/systemd/system",
                wait_lock=30,
            ),
            False,
        )
        self.assertEqual(cmd[-3:], ["rollback", "--run", "r1"])
        for pair in (
            ["--pins", "/etc/p.json"],
            ["--mirror", "http://ctl:8080"],
            ["--unit-dir", "/run/systemd/system"],
            ["--wait-lock", "30"],
        ):
            i = cmd.index(pair[0])
            self.assertEqual(cmd[i : i + 2], pair)


class Results(unittest.TestCase):
    def test_a_completed_step_is_a_change_with_its_run(self):
        r = obs_upgrade.result_of(0, json.dumps(COMPLETED), "", False)
        self.assertTrue(r["changed"])
        self.assertNotIn("failed", r)
        self.assertEqual(r["run_id"], "20261122-101500-abcd")
        self.assertEqual(r["components"][0]["outcome"], "completed")
        self.assertEqual(r["msg"], "node_exporter 1.5.0 -> 1.9.0")
        self.assertEqual(r["ansible_facts"]["obs_upgrade_last"]["run_id"], r["run_id"])
        self.assertEqual(r["ansible_facts"]["obs_upgrade_report"], COMPLETED)

    def test_nothing_to_do_is_no_change(self):
        report = {"schema": "obs-upgrade/run/v1", "run_id": "", "status": "COMPLETED", "steps": []}
        r = obs_upgrade.result_of(0, json.dumps(report), "", False)
        self.assertFalse(r["changed"])
        self.assertEqual(r["msg"], "nothing to do")

    def test_a_dry_run_with_pending_steps_would_change(self):
        report = dict(COMPLETED, status="PLANNING")
        report["steps"] = [dict(COMPLETED["steps"][0], status={"status": "pending"})]
        r = obs_upgrade.result_of(0, json.dumps(report), "", True)
        self.assertTrue(r["changed"])

    def test_a_rolled_back_run_fails_with_the_tools_message_and_no_change(self):
        r = obs_upgrade.result_of(1, json.dumps(ROLLED_BACK), "", False)
        self.assertTrue(r["failed"])
        self.assertFalse(r["changed"])
        self.assertEqual(
            r["msg"], "node_exporter: health check failed: the unit is not active"
        )

    def test_an_error_object_gives_its_message(self):
        err = {
            "schema": "obs-upgrade/error/v1",
            "ok": False,
            "exit_code": 2,
            "kind": "usage",
            "message": "pins.json: the pin file does not fit this host: …",
        }
        r = obs_upgrade.result_of(2, json.dumps(err), "", False)
        self.assertTrue(r["failed"])
        self.assertEqual(r["msg"], err["message"])

    def test_garbage_on_stdout_falls_back_to_stderr(self):
        r = obs_upgrade.result_of(3, "not json", "error: another run holds the lock\n", False)
        self.assertTrue(r["failed"])
        self.assertEqual(r["msg"], "error: another run holds the lock")


def run_module(path, args, check_mode=False):
    """Runs a module file as Ansible does; its JSON result."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        a = dict(args)
        a["_ansible_check_mode"] = check_mode
        json.dump({"ANSIBLE_MODULE_ARGS": a}, f)
    try:
        out = subprocess.run(
            [sys.executable, path, f.name], capture_output=True, text=True, check=False
        )
    finally:
        os.unlink(f.name)
    return json.loads(out.stdout)


class AsAnsibleRunsIt(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.argv = os.path.join(self.dir, "argv")
        self.binary = os.path.join(self.dir, "obs-upgrade")

    def fake(self, report, code):
        with open(os.path.join(self.dir, "report.json"), "w") as f:
            json.dump(report, f)
        with open(self.binary, "w") as f:
            f.write(
                "#!/bin/sh\nprintf '%%s\\n' \"$@\" > %s\ncat %s\nexit %d\n"
                % (self.argv, os.path.join(self.dir, "report.json"), code)
            )
        os.chmod(self.binary, stat.S_IRWXU)

    def argv_seen(self):
        with open(self.argv) as f:
            return f.read().split()

    def test_apply_reports_the_change(self):
        self.fake(COMPLETED, 0)
        r = run_module(os.path.join(MODULES, "obs_upgrade.py"), {"binary": self.binary})
        self.assertTrue(r["changed"], r)
        self.assertEqual(r["run_id"], COMPLETED["run_id"])
        self.assertNotIn("--dry-run", self.argv_seen())

    def test_check_mode_runs_a_dry_run(self):
        self.fake(dict(COMPLETED, status="PLANNING"), 0)
        run_module(os.path.join(MODULES, "obs_upgrade.py"), {"binary": self.binary}, True)
        self.assertEqual(self.argv_seen()[-3:], ["apply", "--yes", "--dry-run"])

    def test_a_failure_fails_the_task(self):
        self.fake(ROLLED_BACK, 1)
        r = run_module(os.path.join(MODULES, "obs_upgrade.py"), {"binary": self.binary})
        self.assertTrue(r["failed"], r)
        self.assertIn("health check failed", r["msg"])

    def test_a_missing_binary_fails_except_in_check_mode(self):
        missing = os.path.join(self.dir, "none")
        r = run_module(os.path.join(MODULES, "obs_upgrade.py"), {"binary": missing})
        self.assertTrue(r["failed"], r)
        self.assertIn("host role", r["msg"])
        r = run_module(os.path.join(MODULES, "obs_upgrade.py"), {"binary": missing}, True)
        self.assertTrue(r["changed"], r)
        self.assertNotIn("failed", r)

    def test_rollback_needs_a_run_id(self):
        self.fake(COMPLETED, 0)
        r = run_module(
            os.path.join(MODULES, "obs_upgrade.py"), {"binary": self.binary, "command": "rollback"}
        )
        self.assertTrue(r["failed"], r)
        self.assertIn("run_id", r["msg"])


class FleetReport(unittest.TestCase):
    def test_rows_totals_and_table(self):
        hosts = {
            "h1": {"host": "h1", "changed": True, "run_id": "r1", "components": [
                {"component": "node_exporter", "from": "1.5.0", "to": "1.9.0",
                 "outcome": "completed"}]},
            "h2": {"host": "h2", "changed": False, "run_id": "", "components": []},
            "h3": {"host": "h3", "failed": True, "msg": "node_exporter: health", "run_id": "r3",
                   "components": [{"component": "node_exporter", "from": "1.5.0",
                                   "to": "1.9.1", "outcome": "rolled_back"}]},
        }
        report = fleet_report.build_report(hosts, "r")
        self.assertEqual(report["totals"], {"hosts": 3, "changed": 1, "unchanged": 1, "failed": 1})
        table = fleet_report.render_table(report)
        lines = table.splitlines()
        self.assertTrue(lines[0].startswith("HOST"))
        self.assertIn("h1    node_exporter  1.5.0  1.9.0  completed      r1", table)
        self.assertIn("h2    -", table)
        self.assertIn("h3 failed: node_exporter: health", table)

    def test_the_module_writes_both_files_once(self):
        d = tempfile.mkdtemp()
        frags = os.path.join(d, "hosts")
        os.mkdir(frags)
        with open(os.path.join(frags, "h1.json"), "w") as f:
            json.dump({"host": "h1", "changed": False, "components": []}, f)
        with open(os.path.join(frags, "junk.json"), "w") as f:
            f.write("{not json")
        args = {
            "fragments_dir": frags,
            "json_path": os.path.join(d, "report.json"),
            "text_path": os.path.join(d, "report.txt"),
        }
        path = os.path.join(MODULES, "fleet_report.py")
        r = run_module(path, args)
        self.assertTrue(r["changed"], r)
        with open(args["json_path"]) as f:
            self.assertEqual(json.load(f)["totals"]["hosts"], 1)
        r = run_module(path, args)
        self.assertFalse(r["changed"], r)


if __name__ == "__main__":
    unittest.main()

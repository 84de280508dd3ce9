#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: obs-upgrade contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: obs_upgrade
short_description: Run obs-upgrade on a host and report the Ansible way
description:
  - Runs C(obs-upgrade apply --yes --json) (or C(rollback --run ID)) on the
    host and turns its JSON report into Ansible's result.
  - C(changed) is true only when a component moved; C(failed) carries the
    tool's own message; check mode runs C(apply --dry-run) and changes
    nothing.
  - With a pin file in place (the C(host) role writes one), the host asks no
    release API and installs exactly the pinned versions.
version_added: "1.0.0"
author: obs-upgrade contributors
options:
  command:
    description: What to run.
    type: str
    choices: [apply, rollback]
    default: apply
  run_id:
    description: The run to undo (C(command=rollback)).
    type: str
  binary:
    description: The obs-upgrade binary on the host.
    type: path
    default: /usr/local/bin/obs-upgrade
  root:
    description: The root obs-upgrade operates on (C(--root)).
    type: path
    default: /
  config:
    description: The stack file (C(--config)); default the one under I(root).
    type: path
  pins:
    description: The pin file (C(--pins)); default C(<root>/etc/obs-upgrade/pins.json) when present.
    type: path
  mirror:
    description: Where a pinned host downloads from (C(--mirror)), overriding the pin file's mirror.
    type: str
  unit_dir:
    description: Where unit files are (C(--unit-dir)).
    type: path
  service_manager:
    description: How services are run (C(--service-manager)).
    type: str
    choices: [auto, systemd, supervisor]
    default: auto
  wait_lock:
    description: Seconds to wait for another run's lock (C(--wait-lock)).
    type: int
    default: 0
attributes:
  check_mode:
    support: full
    description: C(apply --dry-run); a rollback in check mode only says what it would undo.
"""

EXAMPLES = r"""
- name: Upgrade to the pinned versions
  obs_upgrade.fleet.obs_upgrade:
    pins: /etc/obs-upgrade/pins.json
  register: upgrade

- name: Undo that run
  obs_upgrade.fleet.obs_upgrade:
    command: rollback
    run_id: "{{ upgrade.run_id }}"
"""

RETURN = r"""
run_id:
  description: The run's id (what C(command=rollback) takes); empty when nothing ran.
  returned: always
  type: str
status:
  description: The run's status (C(COMPLETED), C(ROLLED_BACK), C(FAILED), C(PLANNING) for a dry run).
  returned: always
  type: str
components:
  description: Per step, the component, from, to and outcome.
  returned: always
  type: list
  elements: dict
report:
  description: The run's whole JSON report (schema C(obs-upgrade/run/v1)).
  returned: always
  type: dict
ansible_facts:
  description: >-
    C(obs_upgrade_last) (run_id, status, components) and C(obs_upgrade_report)
    (the whole JSON report), for later tasks and plays.
  returned: always
  type: dict
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule

# Exit codes of obs-upgrade (docs/cli.md).
EXIT_OK = 0
EXIT_FAILED = 1


def build_command(params, check_mode):
    """The obs-upgrade command line for these module parameters."""
    cmd = [params["binary"], "--root", params["root"], "--json"]
    for key, flag in (
        ("config", "--config"),
        ("pins", "--pins"),
        ("mirror", "--mirror"),
        ("unit_dir", "--unit-dir"),
    ):
        if params.get(key):
            cmd += [flag, params[key]]
    cmd += ["--service-manager", params.get("service_manager") or "auto"]
    if params.get("wait_lock"):
        cmd += ["--wait-lock", str(params["wait_lock"])]
    if params["command"] == "rollback":
        cmd += ["rollback", "--run", params["run_id"]]
    else:
        cmd += ["apply", "--yes"]
        if check_mode:
            cmd.append("--dry-run")
    return cmd


def step_status(step):
    """A step's outcome word (the report nests it as status.status)."""
    status = step.get("status")
    if isinstance(status, dict):
        return status.get("status", "")
    return status or ""


def summarize(report, check_mode):
    """(changed, components) from a run/v1 report."""
    components = []
    changed = False
    for step in report.get("steps") or []:
        outcome = step_status(step)
        components.append(
            {
                "component": step.get("component", ""),
                "from": step.get("from", ""),
                "to": step.get("to", ""),
                "outcome": outcome,
                "message": step.get("message") or "",
            }
        )
        if check_mode:
            changed = changed or outcome in ("pending", "completed")
        else:
            changed = changed or outcome == "completed"
    return changed, components


def failure_message(report, stderr, rc):
    """The tool's own words for a failure."""
    if report.get("schema", "").startswith("obs-upgrade/error/"):
        return report.get("message") or "obs-upgrade failed (exit %d)" % rc
    for step in report.get("steps") or []:
        if step_status(step) in ("failed", "rolled_back") and step.get("message"):
            return "%s: %s" % (step.get("component", ""), step["message"])
    for blocker in report.get("blockers") or []:
        return "No-Go: %s" % blocker
    lines = [line for line in (stderr or "").splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error")]
    if errors:
        return errors[-1]
    if lines:
        return lines[-1]
    return "obs-upgrade failed (exit %d)" % rc


def parse_report(stdout):
    """The JSON object on stdout, or an empty dict."""
    try:
        value = json.loads(stdout or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def result_of(rc, stdout, stderr, check_mode):
    """The module result (without failing): a dict with changed/failed/msg."""
    report = parse_report(stdout)
    changed, components = summarize(report, check_mode)
    summary = {
        "run_id": report.get("run_id", ""),
        "status": report.get("status", ""),
        "components": components,
    }
    result = dict(summary)
    result.update(
        {
            "changed": changed,
            "rc": rc,
            "report": report,
            "stderr": stderr,
            "ansible_facts": {"obs_upgrade_last": summary, "obs_upgrade_report": report},
        }
    )
    if rc != EXIT_OK:
        result["failed"] = True
        result["msg"] = failure_message(report, stderr, rc)
        # A failed run rolled back: the host is where it was.
        result["changed"] = False
    else:
        moved = [c for c in components if c["outcome"] in ("completed", "pending")]
        if moved:
            result["msg"] = ", ".join(
                "%s %s -> %s" % (c["component"], c["from"], c["to"]) for c in moved
            )
        else:
            result["msg"] = "nothing to do"
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            command=dict(type="str", default="apply", choices=["apply", "rollback"]),
            run_id=dict(type="str"),
            binary=dict(type="path", default="/usr/local/bin/obs-upgrade"),
            root=dict(type="path", default="/"),
            config=dict(type="path"),
            pins=dict(type="path"),
            mirror=dict(type="str"),
            unit_dir=dict(type="path"),
            service_manager=dict(
                type="str", default="auto", choices=["auto", "systemd", "supervisor"]
            ),
            wait_lock=dict(type="int", default=0),
        ),
        required_if=[("command", "rollback", ("run_id",))],
        supports_check_mode=True,
    )
    params = module.params
    if params["command"] == "rollback" and module.check_mode:
        module.exit_json(
            changed=True,
            run_id=params["run_id"],
            status="",
            components=[],
            report={},
            msg="would undo run %s" % params["run_id"],
        )
    if not os.path.exists(params["binary"]):
        if module.check_mode:
            module.exit_json(
                changed=True,
                run_id="",
                status="",
                components=[],
                report={},
                msg="%s is not installed yet: it would be installed and run" % params["binary"],
            )
        module.fail_json(
            msg="%s is not installed; install it with the obs_upgrade.fleet.host role"
            % params["binary"]
        )
    cmd = build_command(params, module.check_mode)
    rc, stdout, stderr = module.run_command(cmd, check_rc=False)
    result = result_of(rc, stdout, stderr, module.check_mode)
    result["cmd"] = cmd
    if result.get("failed"):
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()

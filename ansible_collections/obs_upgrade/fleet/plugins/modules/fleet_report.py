#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: obs-upgrade contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: fleet_report
short_description: Gather a rollout's per-host results into a fleet report
description:
  - Runs on the controller. Reads the per-host results a rollout wrote (one
    JSON file per host in I(fragments_dir)) and writes the fleet report: per
    host and component, from, to, outcome and run id, as JSON and as a
    readable table.
  - Rewritten after every batch, so a rollout stopped by a failure still
    leaves a report of what happened.
version_added: "1.0.0"
author: obs-upgrade contributors
options:
  fragments_dir:
    description: The directory of per-host JSON results.
    type: path
    required: true
  json_path:
    description: Where to write the JSON report.
    type: path
    required: true
  text_path:
    description: Where to write the table.
    type: path
    required: true
  rollout:
    description: A name for this rollout (shown in both files).
    type: str
    default: rollout
attributes:
  check_mode:
    support: full
    description: The report is written in check mode too (it changes no host).
"""

EXAMPLES = r"""
- name: Write the fleet report
  obs_upgrade.fleet.fleet_report:
    fragments_dir: /srv/rollouts/2026-11-22/hosts
    json_path: /srv/rollouts/2026-11-22/report.json
    text_path: /srv/rollouts/2026-11-22/report.txt
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
report:
  description: The fleet report.
  returned: always
  type: dict
table:
  description: The readable table.
  returned: always
  type: str
"""

import json
import os
import tempfile

from ansible.module_utils.basic import AnsibleModule

COLUMNS = ("HOST", "COMPONENT", "FROM", "TO", "OUTCOME", "RUN")


def load_fragments(directory):
    """Per-host results by host name (files that are not JSON objects are skipped)."""
    hosts = {}
    if not os.path.isdir(directory):
        return hosts
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".json"):
            continue
        try:
            with open(os.path.join(directory, name)) as f:
                value = json.load(f)
        except (OSError, ValueError):
            continue
        if isinstance(value, dict) and value.get("host"):
            hosts[value["host"]] = value
    return hosts


def host_outcome(fragment):
    """One word for a host: failed, changed, unchanged, or checked (check mode)."""
    if fragment.get("failed"):
        return "failed"
    if fragment.get("check_mode"):
        return "would change" if fragment.get("changed") else "unchanged"
    return "changed" if fragment.get("changed") else "unchanged"


def build_report(hosts, rollout):
    """The fleet report: hosts, their rows, totals."""
    rows = []
    totals = {"hosts": len(hosts), "changed": 0, "unchanged": 0, "failed": 0}
    for host in sorted(hosts):
        f = hosts[host]
        outcome = host_outcome(f)
        if outcome == "failed":
            totals["failed"] += 1
        elif outcome in ("changed", "would change"):
            totals["changed"] += 1
        else:
            totals["unchanged"] += 1
        components = f.get("components") or []
        if not components:
            rows.append(
                {
                    "host": host,
                    "component": "-",
                    "from": "-",
                    "to": "-",
                    "outcome": outcome if outcome == "failed" else "nothing to do",
                    "run_id": f.get("run_id") or "-",
                }
            )
        for c in components:
            rows.append(
                {
                    "host": host,
                    "component": c.get("component", ""),
                    "from": c.get("from", ""),
                    "to": c.get("to", ""),
                    "outcome": c.get("outcome", ""),
                    "run_id": f.get("run_id") or "-",
                }
            )
    return {
        "schema": "obs-upgrade/fleet-report/v1",
        "rollout": rollout,
        "totals": totals,
        "hosts": hosts,
        "rows": rows,
    }


def render_table(report):
    """The report as an aligned table, then the totals and each failure's message."""
    cells = [COLUMNS] + [
        (r["host"], r["component"], r["from"], r["to"], r["outcome"], r["run_id"])
        for r in report["rows"]
    ]
    widths = [max(len(str(row[i])) for row in cells) for i in range(len(COLUMNS))]
    lines = [
        "  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells
    ]
    t = report["totals"]
    lines.append("")
    lines.append(
        "%s: %d hosts, %d changed, %d unchanged, %d failed"
        % (report["rollout"], t["hosts"], t["changed"], t["unchanged"], t["failed"])
    )
    for host in sorted(report["hosts"]):
        f = report["hosts"][host]
        if f.get("failed"):
            lines.append("%s failed: %s" % (host, f.get("msg", "")))
    return "\n".join(lines) + "\n"


def write_if_changed(path, text):
    """Atomically replaces path with text; whether it changed."""
    try:
        with open(path) as f:
            if f.read() == text:
                return False
    except OSError:
        pass
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".fleet-report.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return True


def main():
    module = AnsibleModule(
        argument_spec=dict(
            fragments_dir=dict(type="path", required=True),
            json_path=dict(type="path", required=True),
            text_path=dict(type="path", required=True),
            rollout=dict(type="str", default="rollout"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    report = build_report(load_fragments(p["fragments_dir"]), p["rollout"])
    table = render_table(report)
    changed = write_if_changed(p["json_path"], json.dumps(report, indent=2, sort_keys=True) + "\n")
    changed = write_if_changed(p["text_path"], table) or changed
    module.exit_json(changed=changed, report=report, table=table)


if __name__ == "__main__":
    main()

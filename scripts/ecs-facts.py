#!/usr/bin/env python3
"""Writes the ECS facts tests/alert_formats.rs checks an ECS alert against.

Reads elastic/ecs's generated field reference (generated/ecs/ecs_flat.yml) at a release tag from
a git directory and keeps, for the field sets tripline's ECS alerts use, each field's type,
whether it is normalized to an array, and its allowed values.

  scripts/ecs-facts.py GIT_DIR TAG > tests/schemas/ecs-TAG-fields.json
"""
import json
import subprocess
import sys

import yaml

git_dir, tag = sys.argv[1], sys.argv[2]
FIELD_SETS = ["@timestamp", "message", "tags", "labels", "ecs", "event", "rule", "threat", "cloud",
              "source", "user", "user_agent", "related", "observer"]


def git(*args):
    return subprocess.run(["git", "--git-dir", git_dir, *args], check=True, capture_output=True, text=True).stdout


flat = yaml.safe_load(git("show", f"{tag}:generated/ecs/ecs_flat.yml"))
fields = {}
for name, field in sorted(flat.items()):
    if name.split(".")[0] not in FIELD_SETS:
        continue
    fact = {"type": field["type"]}
    if "array" in (field.get("normalize") or []):
        fact["array"] = True
    if field.get("allowed_values"):
        fact["allowed_values"] = [v["name"] for v in field["allowed_values"]]
    fields[name] = fact
facts = {
    "source": {"repository": "elastic/ecs", "tag": tag, "commit": git("rev-parse", f"{tag}^{{commit}}").strip(),
               "file": "generated/ecs/ecs_flat.yml", "generator": "scripts/ecs-facts.py"},
    "ecs_version": git("show", f"{tag}:version").strip(),
    "fields": fields,
}
# One field a line: small, and a regeneration's diff reads field by field.
head = json.dumps({k: v for k, v in facts.items() if k != "fields"}, indent=1)[:-2]
lines = ",\n".join(f"  {json.dumps(n)}: {json.dumps(f)}" for n, f in fields.items())
print(f"{head},\n \"fields\": {{\n{lines}\n }}\n}}")

#!/usr/bin/env python3
"""Regenerate attack-enrichment.json (python3 stdlib only; needs `git` on PATH).

Reproduces the build-time enrichment of splunk/contentctl v4.4.1
(contentctl/enrichments/attack_enrichment.py, objects/detection_tags.py,
objects/constants.py, objects/abstract_security_content_objects/detection_abstract.py)
for the technique ids the ESCU cloud detections use, reading the per-object STIX
files of a mitre/cti git repository at a given tag, as contentctl does through
attackcti 0.4.x (stix2 FileSystemSource over enterprise-attack/<type>/).

Usage:
  python3 attack_enrichment.py --cti-git-dir /path/to/mitre-cti/.git \
      --cti-rev 'ATT&CK-v16.0' --detections /work/shared/escu/detections/cloud \
      --out attack-enrichment.json
"""
import argparse
import glob
import json
import os
import re
import subprocess
import sys
import threading

CONTENTCTL = {
    "repo": "https://github.com/splunk/contentctl",
    "version": "v4.4.1",
    "commit": "d4d7d9d3a9c1a5913d7e0af8102473c2d80e51de",
    "files": {
        "techniques_groups_tactics": "contentctl/enrichments/attack_enrichment.py (lines 94-113, 49-63)",
        "kill_chain_by_tactic": "contentctl/objects/constants.py (lines 4-19, ATTACK_TACTICS_KILLCHAIN_MAPPING)",
        "kill_chain_phases": "contentctl/objects/detection_tags.py (lines 90-98)",
        "cis20": "contentctl/objects/detection_tags.py (lines 100-107)",
        "nist": "contentctl/objects/abstract_security_content_objects/detection_abstract.py (lines 729-735)",
    },
    "attackcti": "OTRF/ATTACK-Python-Client 0.4.4 (pyproject: attackcti ^0.4.0): attackcti/attack_api.py "
    "get_enterprise_techniques/get_enterprise_groups drop revoked and x_mitre_deprecated objects; "
    "get_enterprise_relationships does not; attackcti/models.py technique_id = external_references[0].external_id, "
    "tactic = kill_chain_phases[].phase_name, group = name",
}

# contentctl/objects/constants.py ATTACK_TACTICS_KILLCHAIN_MAPPING (v4.4.1 lines 4-19)
KILL_CHAIN_BY_TACTIC = {
    "Reconnaissance": "Reconnaissance",
    "Resource Development": "Weaponization",
    "Initial Access": "Delivery",
    "Execution": "Installation",
    "Persistence": "Installation",
    "Privilege Escalation": "Exploitation",
    "Defense Evasion": "Exploitation",
    "Credential Access": "Exploitation",
    "Discovery": "Exploitation",
    "Lateral Movement": "Exploitation",
    "Collection": "Exploitation",
    "Command And Control": "Command and Control",
    "Exfiltration": "Actions on Objectives",
    "Impact": "Actions on Objectives",
}


def git_objects(git_dir, rev, subdir):
    """Yield every STIX object of the bundles under <rev>:<subdir>."""
    names = subprocess.run(
        ["git", "--git-dir", git_dir, "ls-tree", "--name-only", f"{rev}:{subdir}"],
        check=True, capture_output=True, text=True).stdout.split()
    names = [n for n in names if n.endswith(".json")]
    proc = subprocess.Popen(["git", "--git-dir", git_dir, "cat-file", "--batch"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    feeder = threading.Thread(target=lambda: (
        proc.stdin.write("".join(f"{rev}:{subdir}/{n}\n" for n in names).encode()), proc.stdin.close()))
    feeder.start()
    for _ in names:
        header = proc.stdout.readline().split()
        size = int(header[2])
        data = proc.stdout.read(size)
        proc.stdout.read(1)
        doc = json.loads(data)
        yield from (doc.get("objects", []) if doc.get("type") == "bundle" else [doc])
    feeder.join()
    proc.wait()


def dir_objects(root, subdir):
    for path in sorted(glob.glob(os.path.join(root, subdir, "*.json"))):
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        yield from (doc.get("objects", []) if doc.get("type") == "bundle" else [doc])


def live(o):
    # attackcti remove_revoked_deprecated
    return o.get("x_mitre_deprecated", False) is False and o.get("revoked", False) is False


def detection_ids(det_dir):
    """All tags.mitre_attack_id values (block-list form, as ESCU writes them)."""
    ids = set()
    for path in sorted(glob.glob(os.path.join(det_dir, "*.yml"))):
        text = open(path, encoding="utf-8").read()
        tags = re.search(r"^tags:\n(.*?)(?=^\S|\Z)", text, re.S | re.M)
        if not tags:
            continue
        block = re.search(r"^  mitre_attack_id:\n((?:  - .*\n?)+)", tags.group(1), re.M)
        if block:
            for line in block.group(1).splitlines():
                ids.add(line.strip()[2:].strip().strip("'\""))
    return sorted(ids)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cti-git-dir", help="git dir of a mitre/cti clone")
    ap.add_argument("--cti-rev", default="ATT&CK-v16.0")
    ap.add_argument("--cti-dir", help="or: a checked-out mitre/cti work tree")
    ap.add_argument("--detections", default="/work/shared/escu/detections/cloud")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "attack-enrichment.json"))
    a = ap.parse_args()

    if a.cti_git_dir:
        def load(sub):
            return list(git_objects(a.cti_git_dir, a.cti_rev, "enterprise-attack/" + sub))
        commit = subprocess.run(["git", "--git-dir", a.cti_git_dir, "rev-parse", a.cti_rev + "^{commit}"],
                                check=True, capture_output=True, text=True).stdout.strip()
    elif a.cti_dir:
        def load(sub):
            return list(dir_objects(a.cti_dir, "enterprise-attack/" + sub))
        commit = None
    else:
        sys.exit("give --cti-git-dir or --cti-dir")

    techniques = [o for o in load("attack-pattern") if o.get("type") == "attack-pattern" and live(o)]
    groups = {o["id"]: o for o in load("intrusion-set") if o.get("type") == "intrusion-set" and live(o)}
    # relationships are NOT filtered for revoked/deprecated by contentctl/attackcti
    rels = [o for o in load("relationship") if o.get("type") == "relationship"]

    by_target = {}
    for r in rels:
        if r["source_ref"].startswith("intrusion-set"):
            by_target.setdefault(r["target_ref"], []).append(r["source_ref"])

    wanted = detection_ids(a.detections)
    out_t = {}
    for t in techniques:
        tid = t["external_references"][0].get("external_id")
        if tid not in wanted:
            continue
        if tid in out_t:
            sys.exit(f"duplicate technique id {tid}")
        tactics = sorted(p["phase_name"].replace("-", " ").title() for p in t.get("kill_chain_phases", []))
        # one entry per relationship whose group is live (duplicates kept, as contentctl does)
        names = sorted(groups[s]["name"] for s in by_target.get(t["id"], []) if s in groups)
        out_t[tid] = {"name": t["name"], "tactics": tactics, "groups": names}
    missing = [i for i in wanted if i not in out_t]
    if missing:
        sys.exit(f"technique ids not found (revoked/deprecated?): {missing}")

    doc = {
        "source": {
            "contentctl": CONTENTCTL,
            "attack": {
                "repo": "https://github.com/mitre/cti",
                "tag": a.cti_rev,
                "commit": commit,
                "paths": ["enterprise-attack/attack-pattern/", "enterprise-attack/intrusion-set/",
                          "enterprise-attack/relationship/"],
            },
            "detections": "splunk/security_content b13b314 detections/cloud/*.yml tags.mitre_attack_id",
            "license": {
                "attack": "ATT&CK(R) data: (c) 2024 The MITRE Corporation. This work is reproduced and distributed "
                          "with the permission of The MITRE Corporation. Terms: https://attack.mitre.org/resources/"
                          "legal-and-branding/terms-of-use/ (mitre/cti LICENSE.txt)",
                "contentctl": "Apache-2.0 (splunk/contentctl LICENSE.md)",
            },
        },
        "kill_chain_by_tactic": KILL_CHAIN_BY_TACTIC,
        "kill_chain_rule": "set of kill_chain_by_tactic[t] over every tactic of every technique of the "
                           "detection, sorted by string value",
        "nist_by_type": {"TTP": ["DE.CM"], "Anomaly": ["DE.AE"], "Hunting": ["DE.AE"], "Correlation": ["DE.AE"]},
        "nist_rule": "type == TTP -> [DE.CM], any other type -> [DE.AE]; independent of ATT&CK",
        "cis20": [{"security_domain": "network", "value": ["CIS 13"]},
                  {"security_domain": "*", "value": ["CIS 10"]}],
        "technique_rule": "name = attack-pattern name; tactics = kill_chain_phases[].phase_name with '-' -> ' ' "
                          "and str.title() ('Command And Control'), sorted; groups = names of non-revoked, "
                          "non-deprecated intrusion-sets with a relationship (any type, not itself filtered) whose "
                          "target_ref is this technique's own STIX id (sub-techniques do NOT inherit the parent's "
                          "groups), sorted with Python's default (code point) order, duplicates kept",
        "techniques": {k: out_t[k] for k in sorted(out_t)},
    }
    lines = ["{"]
    keys = list(doc)
    for i, k in enumerate(keys):
        comma = "," if i < len(keys) - 1 else ""
        if k == "techniques":
            lines.append(f'  "techniques": {{')
            tk = list(doc[k])
            for j, tid in enumerate(tk):
                c2 = "," if j < len(tk) - 1 else ""
                lines.append(f"    {json.dumps(tid)}: {json.dumps(doc[k][tid], ensure_ascii=False)}{c2}")
            lines.append("  }" + comma)
        else:
            body = json.dumps(doc[k], indent=2, ensure_ascii=False).replace("\n", "\n  ")
            # keep short arrays of strings on one line
            body = re.sub(r'\[\s*\n\s*("[^"\n]*"(?:,\s*\n\s*"[^"\n]*")*)\s*\n\s*\]',
                          lambda m: "[" + re.sub(r",\s*\n\s*", ", ", m.group(1)) + "]", body)
            lines.append(f"  {json.dumps(k)}: {body}{comma}")
    lines.append("}")
    with open(a.out, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    json.loads(open(a.out, encoding="utf-8").read())
    print(f"wrote {a.out}: {len(out_t)} techniques")


if __name__ == "__main__":
    main()

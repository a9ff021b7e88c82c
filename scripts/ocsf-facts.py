#!/usr/bin/env python3
"""Writes the OCSF facts tests/alert_formats.rs checks a Detection Finding against.

Reads the ocsf/ocsf-schema repository (a git directory) at a release tag and resolves, as the
OCSF server does, the detection_finding class (base_event -> finding -> detection_finding, with
the profiles it includes) and the objects tripline's findings use: each attribute's JSON type,
whether it is an array, the object it holds, its requirement, its enum, and the profile that adds
it. Observable type ids are gathered from the dictionary's types, attributes and objects.

  scripts/ocsf-facts.py GIT_DIR TAG > tests/schemas/ocsf-TAG-detection_finding.json
"""
import json
import subprocess
import sys

git_dir, tag = sys.argv[1], sys.argv[2]
# The objects a tripline finding can hold; the test fails on an object missing from this list.
OBJECTS = ["metadata", "product", "finding_info", "analytic", "attack", "tactic", "technique",
           "sub_technique", "observable", "evidences", "actor", "user", "api", "service",
           "network_endpoint", "cloud", "account", "related_event"]


def show(path):
    return json.loads(subprocess.run(["git", "--git-dir", git_dir, "show", f"{tag}:{path}"],
                                     check=True, capture_output=True, text=True).stdout)


def files(prefix):
    out = subprocess.run(["git", "--git-dir", git_dir, "ls-tree", "-r", "--name-only", tag, prefix],
                         check=True, capture_output=True, text=True).stdout
    return [p for p in out.split() if p.endswith(".json")]


dictionary = show("dictionary.json")
types = dictionary["types"]["attributes"]
words = dictionary["attributes"]
objects_by_name = {}
for path in files("objects/"):
    o = show(path)
    objects_by_name[o["name"]] = o
events_by_name = {}
for path in files("events/"):
    e = show(path)
    events_by_name[e["name"]] = e


def json_type(t):
    """The JSON type of an OCSF data type."""
    while t in types and "type" in types[t]:
        t = types[t]["type"]
    return {"string_t": "string", "integer_t": "integer", "long_t": "integer", "timestamp_t": "integer",
            "float_t": "number", "boolean_t": "boolean", "json_t": "any"}.get(t, t)


def attributes(definition, lookup):
    """An event's or object's attributes, its parents' first, then its includes, then its own."""
    merged = {}
    if definition.get("extends"):
        merged.update(attributes(lookup[definition["extends"]], lookup))
    own = dict(definition.get("attributes", {}))
    for include in own.pop("$include", []):
        part = show(include)
        profile = part["name"] if part.get("meta") == "profile" else None
        for name, attr in part["attributes"].items():
            merged[name] = {**merged.get(name, {}), **attr, **({"profile": profile} if profile else {})}
    for name, attr in own.items():
        merged[name] = {**merged.get(name, {}), **attr}
    return merged


def fact(name, attr):
    word = {**words.get(name, {}), **{k: v for k, v in attr.items() if k in ("type", "is_array")}}
    t = word.get("type", "string_t")
    out = {"requirement": attr.get("requirement", word.get("requirement", "optional"))}
    if t in objects_by_name or t == "object":
        out["type"], out["object"] = "object", t
    else:
        out["type"] = json_type(t)
    if word.get("is_array"):
        out["array"] = True
    enum = attr.get("enum", words.get(name, {}).get("enum"))
    # The class's ids are computed (the test checks them); an observable's type ids are gathered below.
    if enum and out["type"] == "integer" and name not in ("category_uid", "class_uid", "type_uid") \
            and not (name == "type_id" and "observable" in attr.get("description", "")):
        out["enum"] = sorted(int(k) for k in enum)
    if attr.get("profile"):
        out["profile"] = attr["profile"]
    return out


detection = events_by_name["detection_finding"]
category = events_by_name[detection["extends"]]["category"]
category_uid = show("categories.json")["attributes"][category]["uid"]
observables = {0: "Unknown", 99: "Other"}
for source in (types, words, objects_by_name):
    for name, d in source.items():
        if "observable" in d:
            observables[d["observable"]] = d.get("caption", name)

facts = {
    "source": {"repository": "ocsf/ocsf-schema", "tag": tag,
               "commit": subprocess.run(["git", "--git-dir", git_dir, "rev-parse", f"{tag}^{{commit}}"],
                                        check=True, capture_output=True, text=True).stdout.strip(),
               "generator": "scripts/ocsf-facts.py"},
    "ocsf_version": show("version.json")["version"],
    "class": {"name": detection["name"], "category_uid": category_uid,
              "class_uid": category_uid * 1000 + detection["uid"],
              "attributes": {n: fact(n, a) for n, a in sorted(attributes(detection, events_by_name).items())}},
    "objects": {name: {n: fact(n, a) for n, a in sorted(attributes(objects_by_name[name], objects_by_name).items())}
                for name in OBJECTS},
    "observable_type_ids": {str(k): v for k, v in sorted(observables.items())},
}
json.dump(facts, sys.stdout, indent=1, sort_keys=False)
print()

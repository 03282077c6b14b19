#!/usr/bin/python3
"""Converts the openspf RFC 7208 conformance suite (YAML, several documents) into one JSON list
for spf_conformance_test.cpp, so the C++ test needs no YAML library. Run by CMake at build time
with Debian's python3-yaml: yaml_to_json.py IN.yml OUT.json"""
import json
import sys

import yaml

with open(sys.argv[1], encoding="utf-8") as source:
    scenarios = [document for document in yaml.safe_load_all(source) if document]
with open(sys.argv[2], "w", encoding="utf-8") as target:
    json.dump(scenarios, target, ensure_ascii=True, default=str)

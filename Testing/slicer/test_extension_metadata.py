"""The extension's three descriptions (CMake, .s4ext, Extensions Index JSON) agree."""

from __future__ import annotations

import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Fields of the Extensions Index catalog entry schema v1.0.1 (additionalProperties: false).
SCHEMA_FIELDS = {"$schema", "build_dependencies", "build_subdirectory", "category", "scm_revision",
                 "scm_type", "scm_url", "tier"}


def _cmake() -> dict[str, str]:
    text = (REPO / "CMakeLists.txt").read_text()
    return dict(re.findall(r'^set\(EXTENSION_(\w+) "([^"]*)"\)', text, re.MULTILINE))


def _s4ext() -> dict[str, str]:
    pairs = {}
    for line in (REPO / "LinGuinE.s4ext").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition(" ")
            pairs[key] = value.strip()
    return pairs


def test_index_entry_follows_the_schema():
    entry = json.loads((REPO / "LinGuinE.json").read_text())
    assert set(entry) <= SCHEMA_FIELDS
    assert {"$schema", "category", "scm_url"} <= set(entry)
    assert "catalog-entry-schema-v1.0.1" in entry["$schema"]


def test_descriptions_agree():
    cmake, s4ext = _cmake(), _s4ext()
    entry = json.loads((REPO / "LinGuinE.json").read_text())
    assert cmake["CATEGORY"] == s4ext["category"] == entry["category"]
    assert cmake["DEPENDS"] == s4ext["depends"] == " ".join(entry["build_dependencies"]) == "PyTorch"
    assert cmake["HOMEPAGE"] == s4ext["homepage"]
    assert cmake["ICONURL"] == s4ext["iconurl"]
    assert cmake["SCREENSHOTURLS"] == s4ext["screenshoturls"]
    assert s4ext["scmurl"] == entry["scm_url"]
    assert entry["scm_url"].removesuffix(".git") in cmake["HOMEPAGE"]


def test_license_is_apache_2():
    text = (REPO / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text


def test_icon_is_128_pixels_square():
    import struct

    for path in (REPO / "Resources/Icons/LinGuinE.png", REPO / "LinGuinE/Resources/Icons/LinGuinE.png"):
        header = path.read_bytes()[:24]
        assert header[:8] == b"\x89PNG\r\n\x1a\n"
        assert struct.unpack(">II", header[16:24]) == (128, 128), path

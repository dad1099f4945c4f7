#!/usr/bin/python3
"""Checks the committed protocol vectors with an independent msgpack
implementation (Debian's python3-msgpack), in both directions:

  1. packing the JSON description gives exactly the committed bytes, and
  2. unpacking the committed bytes gives exactly the JSON description.

A bin value is written {"$bin": "hex"} in the JSON. Bad vectors (bad/) are
only checked for a well-formed description; the C tests check their codes.
Prints one line per check and a closing "N passed, N failed" line."""
import json
import pathlib
import sys

import msgpack


def from_json(v):
    if isinstance(v, dict):
        if set(v) == {"$bin"}:
            return bytes.fromhex(v["$bin"])
        return {k: from_json(x) for k, x in v.items()}
    if isinstance(v, list):
        return [from_json(x) for x in v]
    return v


def main():
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "vectors")
    passed = failed = 0

    def report(ok, what, detail=""):
        nonlocal passed, failed
        print(("ok   " if ok else "FAIL ") + what + (": " + detail if detail else ""))
        if ok:
            passed += 1
        else:
            failed += 1

    files = sorted(root.glob("*.json"))
    report(len(files) >= 16, "vector count", f"{len(files)} vectors")
    for jpath in files:
        desc = json.loads(jpath.read_text(), object_pairs_hook=dict)
        want = from_json(desc["value"])
        data = jpath.with_suffix(".msgpack").read_bytes()
        packed = msgpack.packb(want, use_bin_type=True)
        report(packed == data, f"{jpath.stem}: python packs the JSON to the same bytes",
               "" if packed == data else f"python {packed.hex()} vs {data.hex()}")
        got = msgpack.unpackb(data, raw=False, strict_map_key=False)
        # Key order matters in the format (v and t first), so compare items.
        same = json.dumps(got, default=lambda b: {"$bin": b.hex()}) == \
            json.dumps(want, default=lambda b: {"$bin": b.hex()})
        report(same, f"{jpath.stem}: python unpacks the bytes to the JSON")
    for jpath in sorted((root / "bad").glob("*.json")):
        desc = json.loads(jpath.read_text())
        ok = isinstance(desc.get("code"), int) and desc.get("expect", "").startswith("PB_ERR_") \
            and jpath.with_suffix(".msgpack").exists()
        report(ok, f"{jpath.stem}: bad vector is described")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

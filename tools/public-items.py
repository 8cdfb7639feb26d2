#!/usr/bin/env python3
"""Count each library crate's public items: what its user can name.

    tools/public-items.py            a table, one line per crate
    tools/public-items.py -v         ... and every item's path

How it counts: rustdoc's JSON output (`cargo +nightly rustdoc --lib --
-Z unstable-options --output-format json`, into target/public-items) lists
what the crate's docs show, `#[doc(hidden)]` and private items left out.
From the crate root, every public module is followed, and every `pub use`
to the item it names (another crate's item counts once, as a re-export).
"items" are the distinct nameable items (modules, types, traits,
functions, constants, statics, macros, re-exports); "with members" adds
their public fields, enum variants, and the methods and associated items of
inherent impls (trait impls are not counted). Needs a nightly toolchain.
"""
import json
import os
import subprocess
import sys

CRATES = ["ldchain-resolver", "ldchain-service", "ldchain-sandbox", "ldchain-embed", "ldchain"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("PUBLIC_ITEMS_TARGET", os.path.join(ROOT, "target", "public-items"))


def rustdoc_json(crate):
    subprocess.run(
        ["cargo", "+nightly", "rustdoc", "-q", "-p", crate, "--lib", "--target-dir", TARGET,
         "--", "-Z", "unstable-options", "--output-format", "json"],
        cwd=ROOT, check=True)
    with open(os.path.join(TARGET, "doc", crate.replace("-", "_") + ".json")) as f:
        return json.load(f)


def count(doc):
    index = doc["index"]
    items, members, paths = set(), set(), []

    def kind_of(item):
        return next(iter(item["inner"])) if isinstance(item["inner"], dict) else item["inner"]

    def add_members(item):
        inner = item["inner"]
        k = kind_of(item)
        ids = []
        if k == "struct":
            plain = inner["struct"]["kind"]
            if isinstance(plain, dict) and "plain" in plain:
                ids += plain["plain"]["fields"]
            elif isinstance(plain, dict) and "tuple" in plain:
                ids += [i for i in plain["tuple"] if i is not None]
            ids_impls = inner["struct"]["impls"]
        elif k == "enum":
            ids += inner["enum"]["variants"]
            ids_impls = inner["enum"]["impls"]
        elif k == "union":
            ids += inner["union"]["fields"]
            ids_impls = inner["union"]["impls"]
        elif k == "trait":
            ids += inner["trait"]["items"]
            ids_impls = []
        else:
            ids_impls = []
        for impl_id in ids_impls:
            impl = index.get(str(impl_id))
            if impl and impl["inner"]["impl"]["trait"] is None:
                ids += [i for i in impl["inner"]["impl"]["items"]
                        if index.get(str(i), {}).get("visibility") == "public"]
        for i in ids:
            if str(i) in index:
                members.add(i)

    def walk(item_id, path):
        item = index.get(str(item_id))
        if item is None:
            return
        k = kind_of(item)
        if k == "module":
            if path:
                if item_id in items:
                    return
                items.add(item_id)
                paths.append(("mod", path))
            for child in item["inner"]["module"]["items"]:
                c = index.get(str(child))
                if c is not None:
                    walk(child, path + [c.get("name") or ""])
            return
        if k == "use":
            use = item["inner"]["use"]
            target = use.get("id")
            if target is not None and str(target) in index:
                if use["is_glob"]:
                    t = index[str(target)]
                    for child in t["inner"]["module"]["items"]:
                        c = index.get(str(child))
                        if c is not None:
                            walk(child, path[:-1] + [c.get("name") or ""])
                else:
                    walk(target, path[:-1] + [use["name"]])
            else:
                key = ("use", use["source"])
                if key not in items:
                    items.add(key)
                    paths.append(("re-export", path[:-1] + [use["name"]]))
            return
        if k in ("impl",):
            return
        if item_id in items:
            return
        items.add(item_id)
        paths.append((k, path))
        add_members(item)

    walk(doc["root"], [])
    return len(items), len(items) + len(members), paths


def main():
    verbose = "-v" in sys.argv[1:]
    print(f"{'crate':<20} {'items':>6} {'with members':>13}")
    for crate in CRATES:
        n, m, paths = count(rustdoc_json(crate))
        print(f"{crate:<20} {n:>6} {m:>13}")
        if verbose:
            for k, p in sorted(paths, key=lambda x: x[1]):
                print(f"    {k:<10} {'::'.join(p)}")


if __name__ == "__main__":
    main()

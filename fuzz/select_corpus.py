#!/usr/bin/env python3
"""Pick the checked-in corpus of a fuzz target from what a fuzzing run found.

Usage (from fuzz/, after `cargo fuzz build -O`):
    python3 select_corpus.py TARGET FOUND_DIR [--files 200] [--bytes 1048576]

`cargo fuzz cmin` keeps every input that adds a coverage feature; for the larger targets that
is several hundred files, over the 200 files / 1 MiB a target may keep in `corpus/`. This
runs libFuzzer's merge over the hand-written seeds (`corpus/TARGET/`, all kept: they are named
for what they test, and the crash reproducers among them must stay) and FOUND_DIR with a
merge control file, reads which edges (COV) and features (FT) each input reaches, and adds
inputs from FOUND_DIR greedily: first by new edges (ties: the smaller file), then by new
features, until the file or byte budget is spent. The picks are copied into corpus/TARGET/
as `found_<SHA-1>`; prints what the selection covers. (`-set_cover_merge=1` is what makes
libFuzzer list every feature of every input in the control file; a plain merge lists only
the features an input added to those before it.)
"""
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile


def control_features(binary, dirs, extra):
    """{path: features} from a libFuzzer merge control file (FT lines)."""
    with tempfile.TemporaryDirectory() as tmp:
        control = os.path.join(tmp, "control")
        out = os.path.join(tmp, "out")
        os.mkdir(out)
        subprocess.run([binary, "-set_cover_merge=1", f"-merge_control_file={control}", *extra, out, *dirs],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        lines = open(control).read().splitlines()
    count = int(lines[0])
    files = lines[2:2 + count]
    ft = {}
    for line in lines[2 + count:]:
        kind, idx, *rest = line.split()
        if kind == "FT":
            ft[int(idx)] = set(map(int, rest))
    return {files[i]: ft.get(i, set()) for i in range(count)}


def features(binary, dirs):
    """{path: (edges, features)}: edges from a merge without hit counters (a feature is then
    an edge), features from one with them."""
    edges = control_features(binary, dirs, ["-use_counters=0"])
    feats = control_features(binary, dirs, [])
    return {p: (edges.get(p, set()), feats.get(p, set())) for p in feats}


def main():
    target, found = sys.argv[1], sys.argv[2]
    max_files = int(sys.argv[sys.argv.index("--files") + 1]) if "--files" in sys.argv else 200
    max_bytes = int(sys.argv[sys.argv.index("--bytes") + 1]) if "--bytes" in sys.argv else 1 << 20
    binary = f"target/x86_64-unknown-linux-gnu/release/{target}"
    seeds_dir = os.path.join("corpus", target)
    info = features(binary, [seeds_dir, found])
    seeds = [p for p in info if os.path.dirname(os.path.abspath(p)) == os.path.abspath(seeds_dir)]
    edges, feats = set(), set()
    for p in seeds:
        edges |= info[p][0]
        feats |= info[p][1]
    # Every file already there counts (libFuzzer skips an empty one, but it stays).
    files = len(os.listdir(seeds_dir))
    size = sum(os.path.getsize(os.path.join(seeds_dir, n)) for n in os.listdir(seeds_dir))
    seed_edges, seed_feats = len(edges), len(feats)
    names = set(os.listdir(seeds_dir))
    pool = [p for p in info if p not in seeds]
    picked = []
    for key in (0, 1):  # edges first, then features
        while files < max_files:
            best, gain = None, 0
            for p in pool:
                g = len(info[p][key] - (edges if key == 0 else feats))
                if g > gain or (g == gain and g > 0 and os.path.getsize(p) < os.path.getsize(best)):
                    if size + os.path.getsize(p) <= max_bytes:
                        best, gain = p, g
            if best is None:
                break
            pool.remove(best)
            picked.append(best)
            edges |= info[best][0]
            feats |= info[best][1]
            files += 1
            size += os.path.getsize(best)
    for p in picked:
        data = open(p, "rb").read()
        name = "found_" + hashlib.sha1(data).hexdigest()
        if name not in names:
            shutil.copyfile(p, os.path.join(seeds_dir, name))
    all_edges = set().union(*(v[0] for v in info.values()))
    all_feats = set().union(*(v[1] for v in info.values()))
    print(f"{target}: {len(seeds)} seeds + {len(picked)} picked = {files} files, {size} bytes; "
          f"edges {seed_edges} -> {len(edges)} of {len(all_edges)}, "
          f"features {seed_feats} -> {len(feats)} of {len(all_feats)}")


if __name__ == "__main__":
    main()

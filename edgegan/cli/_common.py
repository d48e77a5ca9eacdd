"""Helpers shared by the sub-commands: tables, JSON output, output paths. Torch-free."""

import json
import os
import sys

from ..errors import EdgeganError


def emit_json(obj, stream=None):
    json.dump(obj, stream or sys.stdout, indent=2, sort_keys=False, default=str)
    (stream or sys.stdout).write("\n")


def format_table(rows, columns):
    """``rows``: list of dicts; ``columns``: list of (key, header, format) with format like ``"{:.2f}"``."""
    cells = [[h for _, h, _ in columns]]
    for row in rows:
        line = []
        for key, _, fmt in columns:
            value = row.get(key)
            line.append("-" if value is None else (fmt.format(value) if fmt else str(value)))
        cells.append(line)
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    out = []
    for n, r in enumerate(cells):
        out.append("  ".join(c.rjust(w) if n and i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))))
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def check_output_path(path, force):
    """Refuse to overwrite ``path`` unless ``force``."""
    if os.path.exists(path) and not force:
        raise EdgeganError("%s already exists; pass --force to replace it, or choose another path" % path)


def standalone_main(prog, description, epilog, add_arguments, run, argv=None):
    """``python -m edgegan.cli.<command>``: one command's parser and run, user errors as exit code 2."""
    import argparse

    p = argparse.ArgumentParser(prog=prog, description=description, epilog=epilog,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    args = p.parse_args(argv)
    try:
        return run(args)
    except EdgeganError as e:
        print("%s: error: %s" % (prog, e), file=sys.stderr)
        return 2

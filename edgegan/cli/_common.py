"""Helpers shared by the sub-commands: tables, JSON output, output paths. Torch-free."""

import argparse
import json
import os
import sys

from ..errors import EdgeganError


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line on stderr (exit 2), like edgegan's other errors;
    ``--help`` still prints the full usage. Sub-command parsers inherit it."""

    def error(self, message):
        self.exit(2, "%s: error: %s (see %s --help)\n" % (self.prog, message, self.prog))


def status(text):
    """A progress line on stderr for a phase that takes seconds — only when stderr is a terminal, like the
    progress bars (tqdm's ``disable=None``): piped or captured, a failing command still prints one line."""
    stream = sys.stderr
    if getattr(stream, "isatty", lambda: False)():
        print(text, file=stream)


def emit_json(obj, stream=None):
    json.dump(obj, stream or sys.stdout, indent=2, sort_keys=False, default=str)
    (stream or sys.stdout).write("\n")


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def format_table(rows, columns):
    """``rows``: list of dicts; ``columns``: list of (key, header, format) with format like ``"{:.2f}"``.

    Columns of numbers are aligned right, columns of text left (a missing value is ``-``)."""
    cells = [[h for _, h, _ in columns]]
    for row in rows:
        line = []
        for key, _, fmt in columns:
            value = row.get(key)
            line.append("-" if value is None else (fmt.format(value) if fmt and _is_number(value) else str(value)))
        cells.append(line)
    numeric = [any(row.get(key) is not None for row in rows) and
               all(_is_number(row.get(key)) for row in rows if row.get(key) is not None) for key, _, _ in columns]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    out = []
    for n, r in enumerate(cells):
        out.append("  ".join(c.rjust(w) if right else c.ljust(w)
                             for c, w, right in zip(r, widths, numeric)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def check_output_path(path, force):
    """Refuse to overwrite ``path`` unless ``force``, and a ``path`` that cannot be written (checked now,
    before the work starts)."""
    from ..runtime.bundle import check_writable

    if os.path.lexists(path) and not force:
        raise EdgeganError("%s already exists; pass --force to replace it, or choose another path" % path)
    check_writable(path)


def standalone_main(prog, description, epilog, add_arguments, run, argv=None):
    """``python -m edgegan.cli.<command>``: one command's parser and run, user errors as exit code 2."""
    p = OneLineParser(prog=prog, description=description, epilog=epilog,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    args = p.parse_args(argv)
    try:
        return run(args)
    except EdgeganError as e:
        print("%s: error: %s" % (prog, e), file=sys.stderr)
        return 2

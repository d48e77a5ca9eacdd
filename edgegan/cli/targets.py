"""``edgegan targets``: list the device profiles."""

import argparse

from ._common import emit_json, format_table

EPILOG = """examples:
  edgegan targets
  edgegan targets --json
"""


def register(sub):
    p = sub.add_parser("targets", help="list the device profiles",
                       description="List the device profiles that `edgegan build --target` accepts.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", action="store_true", help="print the full profiles as JSON")
    p.set_defaults(func=run)


def run(args):
    from ..targets.profiles import load_profile, shipped_profiles

    profiles = [load_profile(name) for name in shipped_profiles()]
    if args.json:
        emit_json(profiles)
        return 0
    rows = [{"name": p["name"], "compiler": p["compiler"], "runtime": p["runtime"]["backend"],
             "opset": p["export"]["opset"], "precision": "/".join(p["build"]["precisions"]),
             "description": p.get("description", "")} for p in profiles]
    print(format_table(rows, [("name", "target", None), ("compiler", "compiler", None), ("runtime", "runtime", None),
                              ("opset", "opset", None), ("precision", "precisions", None),
                              ("description", "description", None)]))
    return 0

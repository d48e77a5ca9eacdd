"""``edgegan data get NAME`` / ``edgegan data list``: the public pix2pix and CycleGAN data sets."""

import argparse

from ._common import emit_json

GET_EPILOG = """examples:
  edgegan data get edges2shoes                        # → datasets/edges2shoes/{train,val}
  edgegan data get horse2zebra --root ~/data          # → ~/data/horse2zebra/{trainA,trainB,testA,testB}
  edgegan data get facades --url https://mirror.example/facades.tar.gz --sha256 HEX
  edgegan data get edges2shoes --url file:///media/usb/edges2shoes.tar.gz
  edgegan data get edges2shoes --force                # download and extract again

  # then train on it (pix2pix's direction: edges2shoes AtoB, facades BtoA)
  edgegan train slimmable --data datasets/edges2shoes --size 256 --ngf 64 --n-blocks 9 ...

A download that breaks off leaves NAME.tar.gz.part: run the same command again to resume it.
The archive is kept beside the data set with its sha256 (NAME.tar.gz.sha256, `sha256sum -c` format).
"""


def register(subparsers):
    data = subparsers.add_parser("data", help="download the public pix2pix / CycleGAN data sets",
                                 description="Download, check and extract the public image-to-image data sets "
                                             "(pix2pix aligned pairs, CycleGAN unpaired domains).")
    verbs = data.add_subparsers(dest="verb", metavar="VERB")
    data.set_defaults(func=lambda args: data.print_help() or 2)

    get = verbs.add_parser(
        "get", help="download and extract a data set",
        description="Download a data set's archive (resuming a broken-off download), print and store its size "
                    "and sha256, extract it safely (members that would escape the folder, links and devices are "
                    "refused) and put it in ROOT/NAME. `edgegan data list` names the sets.",
        epilog=GET_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    get.add_argument("name", metavar="NAME", help="the data set (edgegan data list)")
    get.add_argument("--root", default="datasets", metavar="DIR", help="where data sets go (default: datasets)")
    get.add_argument("--url", metavar="URL",
                     help="download from this mirror (http(s)://…) or local archive (file:///… or a path) instead")
    get.add_argument("--sha256", metavar="HEX", help="the archive's expected sha256; a mismatch is an error")
    get.add_argument("--force", action="store_true", help="replace ROOT/NAME and download the archive again")
    get.add_argument("--delete-archive", action="store_true",
                     help="delete the archive once extracted (default: keep it beside the data set)")
    get.add_argument("--retries", type=int, default=2, metavar="N",
                     help="resume a broken-off download up to N times before giving up (default 2)")
    get.add_argument("--timeout", type=float, default=60.0, metavar="S",
                     help="seconds without an answer before a connection counts as failed (default 60)")
    get.add_argument("--json", action="store_true", help="print the result as JSON")
    get.set_defaults(func=run_get)

    lst = verbs.add_parser("list", help="the data sets `data get` knows",
                           description="The data sets `edgegan data get` downloads: layout, usual direction, source.")
    lst.add_argument("--json", action="store_true", help="print the catalogue as JSON")
    lst.set_defaults(func=run_list)


def run_get(args):
    from ..errors import EdgeganError
    from ..data.get import get_dataset

    if args.retries < 0:
        raise EdgeganError("--retries must be 0 or more, got %d" % args.retries)
    if args.timeout <= 0:
        raise EdgeganError("--timeout must be positive, got %g" % args.timeout)
    result = get_dataset(args.name, root=args.root, url=args.url, force=args.force, sha256=args.sha256,
                         delete_archive=args.delete_archive, progress=not args.json, timeout=args.timeout,
                         retries=args.retries)
    if args.json:
        emit_json(result)
        return 0
    splits = ", ".join("%s %d" % (k, v) for k, v in result["splits"].items())
    print("%s: %s (%s images)" % (result["name"], result["path"], splits))
    if result["kind"] == "paired":
        print("train on it: edgegan train slimmable --data %s --direction %s --size 256 ..."
              % (result["path"], result["direction"] or "AtoB"))
    else:
        print("an unpaired (CycleGAN) data set: inputs from trainA (--direction AtoB) or trainB (BtoA)")
    return 0


HEADER = {"name": "name", "kind": "layout", "direction": "direction", "about": "what"}


def run_list(args):
    from ..data.catalogue import DATASETS

    rows = [{"name": e.name, "kind": e.kind, "direction": e.direction or "-",
             "source": e.urls[0] if e.urls else "no public URL (see `data get %s`)" % e.name, "about": e.about}
            for e in DATASETS.values()]
    if args.json:
        emit_json(rows)
        return 0
    widths = [max(len(str(r[k])) for r in rows + [HEADER]) for k in ("name", "kind", "direction")]
    for row in [HEADER] + rows:
        print("  ".join(str(row[k]).ljust(w) for k, w in zip(("name", "kind", "direction"), widths)) + "  " +
              row["about"])
    print("sources: pix2pix sets from %s, CycleGAN sets from %s (each has a second mirror)"
          % (DATASETS["edges2shoes"].urls[0].rsplit("/", 1)[0] + "/", DATASETS["horse2zebra"].urls[0].rsplit("/", 1)[0]
             + "/"))
    return 0

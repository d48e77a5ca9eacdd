"""What the training commands share (full package: it imports ``edgegan.train``)."""

import os

from ._common import check_output_path


def run_training(args, body):
    """Run a training command: refuse an existing ``--out`` without ``--force`` (resuming in place,
    ``--resume`` = ``--out``, needs none), call ``body(args)``, and shut ``torch.distributed`` down."""
    from ..train import distributed

    resuming_in_place = args.resume and os.path.abspath(args.resume) == os.path.abspath(args.out)
    if not resuming_in_place:
        check_output_path(args.out, args.force)
    try:
        return body(args)
    finally:
        distributed.cleanup()

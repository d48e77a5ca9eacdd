"""The public image-to-image data sets ``edgegan data get`` knows: where they are served, what archive
they come in, and the layout inside it.

* pix2pix sets: ``NAME.tar.gz`` holding ``NAME/train``, ``NAME/val`` (and for some ``NAME/test``) of
  A|B side-by-side images (``edgegan.data.AlignedFolder``).
* CycleGAN sets: ``NAME.zip`` holding ``NAME/trainA``, ``NAME/trainB``, ``NAME/testA``, ``NAME/testB``
  of single images, unpaired (``edgegan.data.UnpairedFolder``).

``maps``, ``facades`` and ``cityscapes`` exist in both forms; their CycleGAN versions are named
``cyclegan-maps``, ``cyclegan-facades``, ``cyclegan-cityscapes`` here. The URLs are the ones the
pix2pix / CycleGAN download scripts use, the first one tried first. ``sha256`` / ``size`` are left empty
unless they were verified against a download; ``edgegan data get`` prints and records both either way.
"""

from collections import OrderedDict, namedtuple

from ..errors import DatasetError

PAIRED, UNPAIRED = "paired", "unpaired"

PIX2PIX_URLS = ("http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/{}.tar.gz",
                "https://people.eecs.berkeley.edu/~tinghuiz/projects/pix2pix/datasets/{}.tar.gz")
CYCLEGAN_URLS = ("https://people.eecs.berkeley.edu/~taesung_park/CycleGAN/datasets/{}.zip",
                 "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets/{}.zip")

CITYSCAPES_NOTE = ("the Cityscapes licence does not allow redistribution: register at "
                   "https://www.cityscapes-dataset.com, download gtFine_trainvaltest.zip and "
                   "leftImg8bit_trainvaltest.zip, combine photo|label pairs into train/ and val/ folders of A|B "
                   "images (the pix2pix layout), and pass the folder to --data; or pass --url with an archive "
                   "you may use")


class DatasetEntry(namedtuple("DatasetEntry", "name kind folder archive urls direction about sha256 size note")):
    """One data set: ``kind`` paired / unpaired; ``folder`` the top-level folder inside the archive;
    ``archive`` ``tar.gz`` or ``zip``; ``direction`` the usual training direction (pix2pix's), or None;
    ``sha256`` / ``size`` known values to check against (None: not shipped); ``note`` why there is no URL."""

    @property
    def archive_name(self):
        return "%s.%s" % (self.name, self.archive)


def _pix2pix(name, about, direction, urls=PIX2PIX_URLS, note=None):
    return DatasetEntry(name, PAIRED, name, "tar.gz", tuple(u.format(name) for u in urls), direction, about,
                        None, None, note)


def _cyclegan(name, about, folder=None, kind=UNPAIRED, direction=None, note=None):
    folder = folder or name
    return DatasetEntry(name, kind, folder, "zip", tuple(u.format(folder) for u in CYCLEGAN_URLS), direction, about,
                        None, None, note)


DATASETS = OrderedDict((e.name, e) for e in (
    _pix2pix("edges2shoes", "edges → shoe photos (UT Zappos50K), 49,825 train / 200 val pairs at 256²", "AtoB"),
    _pix2pix("edges2handbags", "edges → handbag photos (Amazon handbags), 256² pairs", "AtoB"),
    _pix2pix("facades", "architectural labels ↔ facade photos (CMP Facades), 256²; labels → photo is BtoA",
             "BtoA"),
    _pix2pix("maps", "aerial photo ↔ map (Google Maps)", "AtoB"),
    _pix2pix("night2day", "night → day photos of the same scene (Transient Attributes)", "AtoB"),
    _pix2pix("cityscapes", "street photo ↔ semantic labels (Cityscapes); labels → photo is BtoA", "BtoA",
             urls=(), note=CITYSCAPES_NOTE),
    _cyclegan("horse2zebra", "horses ↔ zebras (ImageNet), unpaired, 256²"),
    _cyclegan("apple2orange", "apples ↔ oranges (ImageNet), unpaired, 256²"),
    _cyclegan("summer2winter_yosemite", "Yosemite in summer ↔ winter (Flickr), unpaired, 256²"),
    _cyclegan("monet2photo", "Monet paintings ↔ landscape photos, unpaired, 256²"),
    _cyclegan("cezanne2photo", "Cézanne paintings ↔ landscape photos, unpaired, 256²"),
    _cyclegan("ukiyoe2photo", "Ukiyo-e prints ↔ landscape photos, unpaired, 256²"),
    _cyclegan("vangogh2photo", "Van Gogh paintings ↔ landscape photos, unpaired, 256²"),
    _cyclegan("iphone2dslr_flower", "iPhone ↔ DSLR (shallow depth of field) flower photos, unpaired"),
    _cyclegan("cyclegan-maps", "aerial photos ↔ maps as unpaired domains (CycleGAN's version of maps)",
              folder="maps"),
    _cyclegan("cyclegan-facades", "facade photos ↔ labels as unpaired domains (CycleGAN's version)",
              folder="facades"),
    _cyclegan("cyclegan-cityscapes", "street photos ↔ labels as unpaired domains (CycleGAN's version; "
                                     "Cityscapes licence terms apply)", folder="cityscapes"),
    _cyclegan("mini", "a small set in the unpaired layout, for smoke tests", folder="mini"),
    _cyclegan("mini_pix2pix", "a small set in the pix2pix aligned layout, for smoke tests", folder="mini_pix2pix",
              kind=PAIRED, direction="BtoA"),
))


def lookup(name):
    """The catalogue entry of ``name``, or a ``DatasetError`` listing the known names."""
    entry = DATASETS.get(name)
    if entry is None:
        raise DatasetError("unknown data set %r; known: %s (edgegan data list describes them)"
                           % (name, ", ".join(DATASETS)))
    return entry

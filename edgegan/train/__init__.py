"""Training: data sets (``data``), losses, metrics, and one module per recipe (``slimmable``).

Modules are imported on use (``from edgegan.train.slimmable import train_slimmable``) so that
importing the package stays cheap.
"""

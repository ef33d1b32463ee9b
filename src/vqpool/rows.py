"""What a manifest row is, for every layer that handles rows (data, extract, store, evaluate).

At the bottom of the package, so that the store can check split names without importing the
corpus recipes above it.
"""

SPLITS = ("train", "validation", "test")

"""The package's version (pyproject.toml holds it; installed metadata carries it) and the versions
of the libraries results depend on, recorded in result rows and bundles."""

from importlib import metadata

try:
    __version__ = metadata.version("vqpool")
except metadata.PackageNotFoundError:  # a source tree on sys.path, not installed
    __version__ = "0+unknown"


def versions() -> dict[str, str | None]:
    """``{package: installed version or None}`` for vqpool, torch and transformers."""
    found: dict[str, str | None] = {}
    for package in ("vqpool", "torch", "transformers"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    return found

"""Reference packages installed outside .venv (`pip install --no-deps --target`, by
scripts/setup_<name>_refs.sh into `<cache>/refs/<name>` or $<NAME>_REFS) and put on sys.path for
the reference adapters only, after .venv so torch / transformers stay ours. A package whose
`__init__` imports what is not installed (a G2P, a hub downloader) is registered bare: its
submodules import without running it. One implementation for the kokoro and spark adapters."""

from __future__ import annotations

import os
import sys
import types
from dataclasses import dataclass
from pathlib import Path

from reference.checkpoints import CACHE


class ReferenceMissing(RuntimeError):
    """An isolated reference folder is not installed."""


@dataclass(frozen=True)
class IsolatedPackage:
    name: str  # the refs folder and the make target's stem (make <name>-refs)
    package: str  # the import name
    dist: str  # its dist-info stem: `<dist>-<version>.dist-info`
    version: str
    env: str  # the environment variable that may point elsewhere

    def folder(self) -> Path:
        return Path(os.environ.get(self.env) or CACHE / "refs" / self.name)

    def installed(self) -> bool:
        return (self.folder() / f"{self.dist}-{self.version}.dist-info" / "METADATA").is_file()

    def activate(self) -> None:
        """On sys.path (offline), the package registered without its __init__; or a clear error."""
        if not self.installed():
            raise ReferenceMissing(f"the {self.dist} {self.version} reference is not installed in "
                                   f"{self.folder()}; run `make {self.name}-refs` "
                                   f"(scripts/setup_{self.name}_refs.sh)")
        os.environ["HF_HUB_OFFLINE"] = "1"
        root = str(self.folder())
        if root not in sys.path:
            sys.path.append(root)  # after .venv: torch/transformers stay ours
        if self.package not in sys.modules:
            pkg = types.ModuleType(self.package)
            pkg.__path__ = [str(self.folder() / self.package)]
            pkg.__version__ = self.version
            sys.modules[self.package] = pkg

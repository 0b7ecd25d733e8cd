"""The adpulse Pulumi program (`Pulumi.yaml` runs `stacks/__main__.py`); see stacks/README.md.

Pulumi runs this directory with `runpy.run_path`, which puts stacks/ first on `sys.path`. There
`secrets.py` would shadow the standard library's `secrets` (pydantic imports it), so the first
import of this package takes the directory off the path: its modules load as `stacks.<name>`.
"""

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _HERE]

"""The adpulse Pulumi program (`Pulumi.yaml` runs `stacks/__main__.py`); see stacks/README.md.

Pulumi runs this directory with `runpy.run_path`, which puts stacks/ first on `sys.path`, so no
module here may share a name with a standard library or installed module (a test checks).
"""

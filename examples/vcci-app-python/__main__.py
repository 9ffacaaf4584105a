"""Entry point for the Python language host (`pulumi up` in this directory, where pulumi-language-python
is available). Here it cannot be built, so run.py runs the same program inline through the Automation API."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from program import program  # noqa: E402

program()

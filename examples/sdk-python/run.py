"""Runs program.py through the Python Automation API as an inline program (no pulumi-language-python
needed: the program runs in this process) and prints a JSON summary on stdout.

    python run.py [up] [preview] [destroy]     (default: all three, in that order)

The backend, passphrase, Pulumi home and microseg data directory come from the environment
(PULUMI_BACKEND_URL, PULUMI_CONFIG_PASSPHRASE, PULUMI_HOME, MICROSEG_DATA_DIR); the CLI is found on PATH; the
microseg plugin is the one installed in PULUMI_HOME. `preview` fails unless it shows no changes.
"""
from __future__ import annotations

import json
import os
import sys

from pulumi import automation as auto

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from program import program  # noqa: E402

PROJECT = "microseg-sdk-python"


def provider_version(stack: auto.Stack) -> str | None:
    """The plugin version the SDK asked for, as recorded on the default provider in the state."""
    for res in stack.export_stack().deployment.get("resources", []):
        if res.get("type") == "pulumi:providers:microseg":
            return res.get("inputs", {}).get("version")
    return None


def main(steps: list[str]) -> dict:
    backend = os.environ["PULUMI_BACKEND_URL"]
    stack = auto.create_or_select_stack(
        stack_name=os.environ.get("STACK", "dev"),
        project_name=PROJECT,
        program=program,
        opts=auto.LocalWorkspaceOptions(
            pulumi_home=os.environ.get("PULUMI_HOME"),
            project_settings=auto.ProjectSettings(name=PROJECT, runtime="python", backend=auto.ProjectBackend(url=backend)),
            env_vars={k: v for k, v in os.environ.items() if k.startswith(("PULUMI_", "MICROSEG_"))},
        ),
    )
    log = lambda msg: print(msg, file=sys.stderr)  # noqa: E731 - engine output to stderr, JSON to stdout
    summary: dict = {"stack": stack.name}
    for step in steps:
        if step == "up":
            res = stack.up(on_output=log)
            summary["up"] = {
                "result": res.summary.result,
                "resourceChanges": res.summary.resource_changes,
                "outputs": {k: v.value for k, v in res.outputs.items()},
                "providerVersion": provider_version(stack),
            }
        elif step == "preview":
            res = stack.preview(on_output=log)
            changes = {op: n for op, n in res.change_summary.items() if op != "same"}
            summary["preview"] = {"changeSummary": res.change_summary}
            if changes:
                raise SystemExit(f"preview after up shows changes: {json.dumps(res.change_summary)}")
        elif step == "destroy":
            res = stack.destroy(on_output=log)
            summary["destroy"] = {"result": res.summary.result, "resourceChanges": res.summary.resource_changes}
        else:
            raise SystemExit(f"unknown step {step!r} (want up, preview or destroy)")
    return summary


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:] or ["up", "preview", "destroy"])))

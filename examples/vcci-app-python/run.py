"""Runs the flagship Python program (program.py) through the Python Automation API as an inline program
(no pulumi-language-python needed: the program runs in this process) and prints a JSON summary on stdout.

    python run.py <stack> [up] [preview] [destroy]   (steps run in the given order; default: up)
    python run.py <stack> --work-dir DIR [steps...]

Stack config:
  default     read from Pulumi.<stack>.yaml next to this file and set explicitly on the stack, in a
              throwaway workspace whose Pulumi.yaml is this project's (plugin paths made absolute), so
              no run ever writes into this directory (Pulumi would add an encryption salt).
  --work-dir  DIR is used as the project directory: Pulumi.yaml and Pulumi.<stack>.yaml are read from
              there and Pulumi writes its encryption salt there; point it at a copy of this directory.

The backend, passphrase, Pulumi home and microseg data directory come from the environment
(PULUMI_BACKEND_URL, PULUMI_CONFIG_PASSPHRASE, PULUMI_HOME, MICROSEG_DATA_DIR: `source scripts/env.sh`);
the CLI is found on PATH. Engine output goes to stderr, the JSON summary to stdout:
  {"stack": ..., "up": {"result", "resourceChanges", "outputs"}, "preview": {"changeSummary"},
   "destroy": {"result", "resourceChanges"}}
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from typing import Any, Dict, List

import yaml
from pulumi import automation as auto

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ in the example directory
sys.path.insert(0, HERE)
from program import program  # noqa: E402

STEPS = ("up", "preview", "destroy")


def load_yaml(path: str) -> Dict[str, Any]:
    with open(path, encoding="utf8") as f:
        return yaml.safe_load(f) or {}


def stack_config(stack_name: str) -> Dict[str, auto.ConfigValue]:
    """The plain config of this project's Pulumi.<stack>.yaml (secure values cannot move between salts)."""
    path = os.path.join(HERE, f"Pulumi.{stack_name}.yaml")
    if not os.path.exists(path):
        raise SystemExit(f"no stack config {path} (stacks: dev, prod)")
    config: Dict[str, auto.ConfigValue] = {}
    for key, value in (load_yaml(path).get("config") or {}).items():
        if isinstance(value, dict) and "secure" in value:
            raise SystemExit(f"{path}: secure value {key} cannot be set explicitly; use --work-dir")
        if isinstance(value, (dict, list)):
            config[key] = auto.ConfigValue(value=json.dumps(value))
        else:
            config[key] = auto.ConfigValue(value=str(value).lower() if isinstance(value, bool) else str(value))
    return config


def throwaway_project() -> str:
    """A temporary project directory holding this project's Pulumi.yaml with absolute plugin paths."""
    project = load_yaml(os.path.join(HERE, "Pulumi.yaml"))
    for plugins in (project.get("plugins") or {}).values():
        for plugin in plugins or []:
            if "path" in plugin:
                plugin["path"] = os.path.normpath(os.path.join(HERE, plugin["path"]))
    work_dir = tempfile.mkdtemp(prefix="vcci-app-python-")
    with open(os.path.join(work_dir, "Pulumi.yaml"), "w", encoding="utf8") as f:
        yaml.safe_dump(project, f, sort_keys=False)
    return work_dir


def main(stack_name: str, steps: List[str], work_dir: str | None) -> Dict[str, Any]:
    for step in steps:
        if step not in STEPS:
            raise SystemExit(f"unknown step {step!r} (want {', '.join(STEPS)})")
    explicit = work_dir is None
    workspace = throwaway_project() if explicit else os.path.abspath(work_dir)
    try:
        project_name = load_yaml(os.path.join(workspace, "Pulumi.yaml"))["name"]
        stack = auto.create_or_select_stack(
            stack_name=stack_name,
            project_name=project_name,
            program=program,
            opts=auto.LocalWorkspaceOptions(
                work_dir=workspace,
                pulumi_home=os.environ.get("PULUMI_HOME"),
                env_vars={k: v for k, v in os.environ.items() if k.startswith(("PULUMI_", "MICROSEG_"))},
            ),
        )
        if explicit:
            stack.set_all_config(stack_config(stack_name))

        log = lambda msg: print(msg, file=sys.stderr)  # noqa: E731 - engine output to stderr, JSON to stdout
        summary: Dict[str, Any] = {"stack": stack.name}
        for step in steps:
            if step == "up":
                res = stack.up(on_output=log)
                summary["up"] = {
                    "result": res.summary.result,
                    "resourceChanges": res.summary.resource_changes,
                    "outputs": {k: v.value for k, v in res.outputs.items()},
                }
            elif step == "preview":
                res = stack.preview(on_output=log)
                summary["preview"] = {"changeSummary": res.change_summary}
            else:
                res = stack.destroy(on_output=log)
                summary["destroy"] = {"result": res.summary.result, "resourceChanges": res.summary.resource_changes}
        return summary
    finally:
        if explicit:
            shutil.rmtree(workspace, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Run the vcci-app-python stack through the Automation API.")
    parser.add_argument("stack", help="stack name: dev or prod (config from Pulumi.<stack>.yaml)")
    parser.add_argument("steps", nargs="*", default=["up"], help="up, preview and/or destroy, in order (default: up)")
    parser.add_argument("--work-dir", help="project directory to run in (a copy of this one): its Pulumi.<stack>.yaml is the config")
    args = parser.parse_args()
    print(json.dumps(main(args.stack, args.steps, args.work_dir)))

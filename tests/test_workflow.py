"""The Pages workflow publishes only a default-profile (or larger) book, and only from the
on-demand or scheduled build; deploy rights live in the deploy job alone."""

import re

import yaml

from _support import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "book.yml"


def load():
    flow = yaml.safe_load(WORKFLOW.read_text())
    # YAML 1.1 reads the bare key `on` as True.
    flow["on"] = flow.pop(True, flow.get("on"))
    return flow


def test_the_workflow_is_valid_yaml_with_its_triggers():
    flow = load()
    assert set(flow["on"]) == {"push", "pull_request", "schedule", "workflow_dispatch"}
    assert set(flow["jobs"]) == {"test", "book", "deploy"}


def test_pushes_test_and_never_deploy():
    jobs = load()["jobs"]
    assert "push" in jobs["test"]["if"] and "pull_request" in jobs["test"]["if"]
    assert any(s.get("run") == "make test" for s in jobs["test"]["steps"])
    assert not any("pages" in str(s.get("uses", "")) for s in jobs["test"]["steps"])
    assert "push" not in jobs["book"]["if"] and "pull_request" not in jobs["book"]["if"]
    assert jobs["deploy"]["needs"] == "book"


def test_smoke_is_never_published():
    flow = load()
    choices = flow["on"]["workflow_dispatch"]["inputs"]["profile"]["options"]
    assert "smoke" not in choices and "cpu" in choices
    assert flow["on"]["workflow_dispatch"]["inputs"]["profile"]["default"] == "cpu"
    assert "smoke" not in flow["jobs"]["book"]["env"]["PROFILE"]


def test_deploy_rights_and_the_pages_group_sit_on_the_deploy_job_only():
    flow = load()
    assert flow["permissions"] == {"contents": "read"}
    deploy = flow["jobs"]["deploy"]
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert deploy["concurrency"]["group"] == "pages"
    for name in ("test", "book"):
        assert "permissions" not in flow["jobs"][name]
    assert "cancel-in-progress" in flow["concurrency"]


def test_the_result_cache_is_restored_and_saved_even_after_a_failure():
    steps = load()["jobs"]["book"]["steps"]
    uses = [s.get("uses", "") for s in steps]
    assert any(u.startswith("actions/cache/restore@") for u in uses)
    save = next(s for s in steps if s.get("uses", "").startswith("actions/cache/save@"))
    assert save["if"] == "always()"


def test_every_action_is_at_its_current_major():
    current = {
        "actions/checkout": 6,
        "actions/setup-python": 6,
        "actions/cache/restore": 5,
        "actions/cache/save": 5,
        "actions/upload-pages-artifact": 4,
        "actions/deploy-pages": 5,
    }
    for action, major in re.findall(r"uses:\s*([\w./-]+)@v(\d+)", WORKFLOW.read_text()):
        assert action in current, f"{action}: not a known action of this workflow"
        assert int(major) == current[action], (
            f"{action}@v{major}: current major is v{current[action]}"
        )

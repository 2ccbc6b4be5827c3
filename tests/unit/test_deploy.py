"""deploy/*.yaml must be configs `ray up` accepts (checked with Ray's own schema, as `ray up`
prepares them: defaults merged, node types filled in)."""

from pathlib import Path

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"

util = pytest.importorskip("ray.autoscaler._private.util")


def prepared(name: str) -> dict:
    config = util.prepare_config(yaml.safe_load((DEPLOY / name).read_text()))  # as `ray up` does
    util.validate_config(config)
    return config


def test_local_cluster_yaml_passes_rays_schema():
    config = prepared("cluster.yaml")
    assert config["provider"]["type"] == "local"
    assert config["max_workers"] == len(config["provider"]["worker_ips"])
    assert any("scripts/setup.sh" in c for c in config["setup_commands"])
    assert ".venv" in config["rsync_exclude"]  # never copy the local venv to the nodes


def test_aws_cluster_yaml_passes_rays_schema():
    config = prepared("cluster-aws.yaml")
    assert config["provider"]["type"] == "aws"
    workers = config["available_node_types"]["gateway"]
    assert workers["min_workers"] == workers["max_workers"], "gateways_per_node needs a fixed size"
    for node_type in config["available_node_types"].values():
        assert {"InstanceType", "ImageId"} <= set(node_type["node_config"])


@pytest.mark.parametrize("name", ["cluster.yaml", "cluster-aws.yaml"])
def test_every_ray_command_runs_rays_from_the_venv(name):
    config = prepared(name)
    for cmd in config["head_start_ray_commands"] + config["worker_start_ray_commands"]:
        assert "~/sacsock_actors/.venv/bin/ray " in cmd, cmd


def test_the_schema_check_rejects_a_misspelt_key():
    config = yaml.safe_load((DEPLOY / "cluster.yaml").read_text())
    config["setup_comands"] = config.pop("setup_commands")
    with pytest.raises(Exception, match="setup_comands"):
        util.validate_config(util.prepare_config(config))

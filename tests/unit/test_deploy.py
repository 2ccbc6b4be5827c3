"""deploy/cluster.yaml must be a config `ray up` accepts (checked with Ray's own schema)."""

from pathlib import Path

import pytest
import yaml

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "cluster.yaml"


def test_cluster_yaml_passes_rays_schema():
    util = pytest.importorskip("ray.autoscaler._private.util")
    config = util.prepare_config(yaml.safe_load(CONFIG.read_text()))  # as `ray up` does
    util.validate_config(config)
    assert config["provider"]["type"] == "local"
    assert any("sacsock_actors" in c for c in config["setup_commands"])

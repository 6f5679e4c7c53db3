"""etc/'s sample configs are what oslo-config-generator writes from opts.py today."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = Path(sys.executable).parent / "oslo-config-generator"


@pytest.mark.parametrize(
    "service", ["glance-registry", "glance-api", "glance-scrubber", "glance-cache"]
)
def test_sample_config_matches_what_the_generator_writes_now(service, tmp_path):
    out = tmp_path / f"{service}.conf"
    subprocess.run(
        [
            str(GENERATOR),
            "--config-file",
            str(ROOT / "etc" / "oslo-config-generator" / f"{service}.conf"),
            "--output-file",
            str(out),
        ],
        check=True,
        cwd=ROOT,
    )
    assert out.read_text() == (ROOT / "etc" / f"{service}.conf").read_text(), (
        f"etc/{service}.conf is stale: regenerate it with oslo-config-generator "
        f"--config-file etc/oslo-config-generator/{service}.conf"
    )

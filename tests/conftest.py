import warnings

import pytest

from twin.case import load_case
from twin.network import build_net

warnings.filterwarnings("ignore", category=FutureWarning)


@pytest.fixture(scope="session")
def seed_case():
    return load_case("shanghai_campus")


@pytest.fixture(scope="session")
def small_case():
    return load_case("small_campus")


@pytest.fixture(scope="session")
def seed_net(seed_case):
    return build_net(seed_case)


def write_variant(tmp_path, old: str, new: str, name: str = "variant.toml", base: str = "shanghai_campus"):
    """A copy of an embedded case with one text replacement (the replacement must apply)."""
    from twin.paths import networks_dir

    text = (networks_dir() / f"{base}.toml").read_text()
    assert old in text, f"test setup: '{old}' not in {base}.toml"
    p = tmp_path / name
    p.write_text(text.replace(old, new, 1))
    return p

"""The defaults the README names are the code's: a default changed in InversionSettings (or a node's schema) and not
in the README fails here. Read from the README's own wording: a bullet "- `input`: ... `value` (default)" or
"... Default `value`", and the levers' "all off by default"."""
import os
import re

import pytest

from reenact_cli.locate import PACK_ROOT
from reenact_core.inversion import DEFAULTS
from reenact_testkit.node_inputs import widget_defaults


@pytest.fixture(scope="module")
def readme():
    with open(os.path.join(PACK_ROOT, "README.md"), encoding="utf-8") as f:
        return f.read()


def named_defaults(text: str) -> dict:
    """{input: the value its README bullet calls the default}."""
    found = {}
    for bullet in re.split(r"\n- ", text):
        name = re.match(r"`(\w+)`:", bullet)
        value = re.search(r"`([\w.]+)` \(default\)|Default `([\w.]+)`", bullet)
        if name and value:
            found[name.group(1)] = value.group(1) or value.group(2)
    return found


def test_the_defaults_the_readme_names_are_the_nodes(readme):
    named = named_defaults(readme)
    assert {"gradient_checkpointing", "precision", "memory_mode", "compile"} <= set(named), named
    node = widget_defaults("OptimizeMotionEmbedding")
    for name, value in named.items():
        assert str(node[name]) == value, f"README says {name} defaults to {value}; the node's default is {node[name]}"


def test_the_levers_are_off_by_default_as_the_readme_says(readme):
    assert "all off by default" in readme
    assert (DEFAULTS.augment_copies, DEFAULTS.debiased_loss_weight, DEFAULTS.frame_difference_loss_weight,
            DEFAULTS.appearance_slot, DEFAULTS.plain_loss_weight) == (0, 0.0, 0.0, False, 1.0)
    assert widget_defaults("ApplyMotionEmbedding")["appearance"] == "as learned"


def test_a_changed_default_is_caught():
    text = "\n- `precision`: the dtype. `bf16` (default) is ..."
    assert named_defaults(text) == {"precision": "bf16"}
    assert str(widget_defaults("OptimizeMotionEmbedding")["precision"]) != "bf16"

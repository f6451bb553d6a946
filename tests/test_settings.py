"""One settings object from the node to the core: every Optimize input is a setting, a file option or data, and the
node's defaults are the settings' own."""
import inspect
import sys
from dataclasses import fields

from reenact_core.inversion import DEFAULTS, InversionSettings
from reenact_core.inversion_job import FILE_DEFAULTS
from reenact_testkit.comfy_pack import node_class
from reenact_testkit.node_inputs import widget_defaults

OPTIMIZE = node_class("OptimizeMotionEmbedding")
NODE_MODULE = sys.modules[OPTIMIZE.__module__]


def data_inputs():
    """execute's named parameters: the inputs that are data, not settings."""
    return [name for name in inspect.signature(OPTIMIZE.execute).parameters if name != "inputs"]


def test_every_input_is_data_a_setting_or_a_file_option():
    declared = OPTIMIZE.INPUT_TYPES()
    inputs = {name for group in ("required", "optional") for name in declared.get(group, {})}
    settings = {f.name for f in fields(InversionSettings)}
    unplaced = {name for name in inputs if name not in data_inputs() and name not in NODE_MODULE.FILE_INPUTS
                and NODE_MODULE.SETTING_INPUTS.get(name, name) not in settings}
    assert not unplaced, f"Optimize inputs that reach neither InversionSettings nor RunFiles: {sorted(unplaced)}"


def test_the_node_defaults_are_the_settings_defaults():
    defaults = widget_defaults("OptimizeMotionEmbedding")
    for name, value in defaults.items():
        if name in NODE_MODULE.FILE_INPUTS:
            assert value == getattr(FILE_DEFAULTS, name), name
        elif name not in data_inputs():
            assert value == getattr(DEFAULTS, NODE_MODULE.SETTING_INPUTS.get(name, name)), name


def test_a_fresh_node_runs_with_the_default_settings_and_an_old_workflow_too():
    """All of a fresh node's values give DEFAULTS; a workflow saved before the optional inputs existed (only the
    required ones, a few changed) keeps DEFAULTS for the rest."""
    defaults = {k: v for k, v in widget_defaults("OptimizeMotionEmbedding").items() if k not in data_inputs()}
    # as dicts: the pack's modules are loaded twice, as ComfyUI's custom node and as reenact_core for the tests
    assert NODE_MODULE.run_settings(defaults).as_dict() == DEFAULTS.as_dict()
    required = set(OPTIMIZE.INPUT_TYPES()["required"])
    old = {k: v for k, v in defaults.items() if k in required} | {"steps": 7, "gradient_checkpointing": "layers"}
    settings = NODE_MODULE.run_settings(old)
    assert (settings.steps, settings.checkpointing) == (7, "layers")
    assert settings.held_out_every == DEFAULTS.held_out_every and settings.compile == DEFAULTS.compile

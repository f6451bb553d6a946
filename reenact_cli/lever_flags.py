"""The levers against a motion bound to the reference's look, as command-line flags of the main command and the
library command: one definition for both. Each flag sets the bundled workflow's input of the same name; left out,
the workflow's value stands (the node's default), so no default is typed here. The names are InversionSettings'
LEVER_SETTINGS and Apply Motion Embedding's `appearance` (tests/test_main_command.py checks they match); the values
are checked by the server's own prompt validation, which names the input and its range.
This module imports neither torch nor ComfyUI: the commands parse their arguments before either is needed.
"""
import argparse

OPTIMIZE_LEVERS = {  # input name -> (argparse type, help)
    "augment_copies": (int, "appearance augmentation: this many changed copies of the reference (0 = off)"),
    "augment_strength": (float, "how far the copies' look may differ, 0 to 1"),
    "augment_changes": (str, "which changes: 'colour and geometry', 'colour' or 'geometry'"),
    "plain_loss_weight": (float, "weight of SVD's own denoising loss"),
    "debiased_loss_weight": (float, "weight of the appearance-debiased loss (0 = off)"),
    "frame_difference_loss_weight": (float, "weight of the loss on consecutive frames' differences (0 = off)"),
    "appearance_slot": ("bool", "learn beside a frozen token holding the reference's look"),
}
APPLY_LEVERS = {"appearance": (str, "'as learned' or \"swap to the target's\": the target's look in the reference's")}


def add_lever_arguments(parser: argparse.ArgumentParser, optimize: bool = True, apply: bool = True) -> None:
    group = parser.add_argument_group("levers against a motion bound to the reference's look (README, \"Motion that "
                                      "stays with the reference's look\"); left out: the bundled workflow's value")
    chosen = {**(OPTIMIZE_LEVERS if optimize else {}), **(APPLY_LEVERS if apply else {})}
    for name, (kind, text) in chosen.items():
        flag = "--" + name.replace("_", "-")
        if kind == "bool":
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=text)
        else:
            group.add_argument(flag, type=kind, default=None, help=text)


def chosen_levers(args, names) -> dict:
    """The levers the command line set, by input name; those left out are not in it."""
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}

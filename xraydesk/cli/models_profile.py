"""``xraydesk models profile MODEL [--remove]``: show or remove a model's site profile.

The profile (``xraydesk.model.site_profile``) is adopted with ``xraydesk validate MODEL
FOLDER --adopt-profile`` or the GUI's validation page; ``xraydesk models`` lists it.
"""

from __future__ import annotations

import argparse
import json

from xraydesk.model.card import ModelCard
from xraydesk.path_args import path_text


def register(actions: argparse._SubParsersAction) -> None:
    profile = actions.add_parser(
        "profile", help="show or remove a model's site profile (see `xraydesk validate`)"
    )
    profile.add_argument("name", type=path_text, metavar="MODEL", help="model name or card path")
    profile.add_argument("--remove", action="store_true", help="remove the site profile")
    profile.set_defaults(run=run_profile)


def run_profile(args: argparse.Namespace) -> int:
    from xraydesk.model.library import resolve_model
    from xraydesk.model.site_profile import load_state, profile_path, remove_profile

    card = resolve_model(args.name)
    if args.remove:
        removed = remove_profile(card)
        if removed is None:
            print(f"{card.label} has no site profile; nothing removed")
        else:
            print(f"Removed the site profile of {card.label} ({removed})")
        return 0
    state = load_state(card)
    if state.refused:
        print(f"{card.label}: site profile refused: {state.refused}")
        return 1
    if state.profile is None:
        print(f"{card.label}: no site profile (the model card's calibration is used)")
        return 0
    print(f"{card.label}: {state.profile.line} ({profile_path(card)})")
    print(json.dumps(state.profile.to_dict(), indent=1))
    return 0


def profile_text(card: ModelCard) -> str | None:
    """One line for ``xraydesk models``: the profile in use or why it is refused."""
    from xraydesk.model.site_profile import load_state

    state = load_state(card)
    if state.refused:
        return f"site profile refused: {state.refused}"
    return state.profile.line if state.profile else None

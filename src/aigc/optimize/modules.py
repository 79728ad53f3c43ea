"""Find and replace submodules by their dotted path, and tell generation's layers from training-only ones."""

from __future__ import annotations

from torch import nn

from aigc.errors import CheckpointError


def get_submodule(root: nn.Module, path: str, *, source: str = "the checkpoint") -> nn.Module:
    try:
        return root.get_submodule(path)
    except AttributeError:
        raise CheckpointError(
            f"{source} records a transform of layer {path!r}, which the network built from its config does not have",
            field="transforms", fix="the checkpoint and its config come from different runs or versions; optimise the run again",
        ) from None


def recorded_layer(root: nn.Module, path: str, kinds: tuple[type, ...], action: str) -> nn.Module:
    """Loading: the layer a transform record names, which must be one of `kinds` (exactly) in the fresh build;
    `action` says what the checkpoint did to it ("quantised ... as a Linear layer")."""
    layer = get_submodule(root, path)
    if type(layer) not in kinds:
        raise CheckpointError(
            f"the checkpoint {action.format(path=repr(path))}, but in the network built from its config it is a {type(layer).__name__}",
            field="transforms", fix="the checkpoint and its config come from different versions; optimise the run again",
        )
    return layer


def set_submodule(root: nn.Module, path: str, module: nn.Module) -> None:
    parent_path, _, name = path.rpartition(".")
    parent = root.get_submodule(parent_path) if parent_path else root
    setattr(parent, name, module)


def training_only(root: nn.Module) -> tuple[str, ...]:
    """Name prefixes of the weights generation never uses (a GAN's discriminator), as the family declares them."""
    return tuple(getattr(type(root), "training_only", ()))


def generation_modules(root: nn.Module) -> list[tuple[str, nn.Module]]:
    """(path, module) of every submodule generation uses, in definition order."""
    skip = training_only(root)
    return [(name, module) for name, module in root.named_modules() if name and not f"{name}.".startswith(skip)]

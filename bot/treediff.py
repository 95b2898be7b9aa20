"""Which taxonomy leaves a pull request touches: re-exported from :mod:`labrador.validators.commits`, the tree-to-tree
diff the bot and the nightly job share (the bot has only a bare repository of fetched commits)."""

from labrador.validators.commits import TREE_MODE, changed_leaves, merge_base, subtree

__all__ = ["TREE_MODE", "changed_leaves", "merge_base", "subtree"]

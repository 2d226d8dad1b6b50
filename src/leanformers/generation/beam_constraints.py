"""Constraints for constrained beam search: phrases (or one of several phrases) the output must contain.

The bookkeeping follows Transformers 4.x, whose constrained beam search this library reproduces token for token,
including two of its quirks: a phrase reset in place restarts at its second token, and a stateful copy of a
disjunctive constraint shares its partial match with the original.
"""

from __future__ import annotations

from ..errors import ConfigError


class Constraint:
    """A requirement on the generated tokens, advanced one token at a time."""

    seqlen: int = 0
    completed: bool = False

    def advance(self):
        """The token (or list of tokens) that would make progress; None when complete."""
        raise NotImplementedError

    def does_advance(self, token_id: int) -> bool:
        raise NotImplementedError

    def update(self, token_id: int) -> tuple[bool, bool, bool]:
        """Consume a token -> (stepped, completed, reset)."""
        raise NotImplementedError

    def reset(self):
        raise NotImplementedError

    def remaining(self) -> int:
        raise NotImplementedError

    def copy(self, stateful: bool = False):
        raise NotImplementedError


def _check_ids(name, token_ids):
    if not isinstance(token_ids, list) or len(token_ids) == 0:
        raise ConfigError(f"{name} has to be a non-empty list of token ids, but is {token_ids!r}.")
    if any(not isinstance(t, int) or isinstance(t, bool) or t < 0 for t in token_ids):
        raise ConfigError(f"{name} has to contain non-negative integer token ids, but is {token_ids!r}.")


def _check_int(token_id):
    if not isinstance(token_id, int):
        raise TypeError(f"token_id has to be an int, but is {token_id!r} of type {type(token_id).__name__}.")


class PhrasalConstraint(Constraint):
    """The output must contain `token_ids` as a contiguous phrase."""

    def __init__(self, token_ids: list[int]):
        _check_ids("token_ids", token_ids)
        self.token_ids = token_ids
        self.seqlen = len(token_ids)
        self.fulfilled_idx = -1  # index of the last matched token of the phrase
        self.completed = False

    def advance(self):
        return None if self.completed else self.token_ids[self.fulfilled_idx + 1]

    def does_advance(self, token_id: int) -> bool:
        _check_int(token_id)
        return not self.completed and token_id == self.token_ids[self.fulfilled_idx + 1]

    def update(self, token_id: int):
        _check_int(token_id)
        if not self.does_advance(token_id):
            self.reset()
            return False, False, True
        self.fulfilled_idx += 1
        self.completed = self.fulfilled_idx == self.seqlen - 1
        return True, self.completed, False

    def reset(self):
        self.completed = False
        self.fulfilled_idx = 0

    def remaining(self) -> int:
        return self.seqlen - (self.fulfilled_idx + 1)

    def copy(self, stateful: bool = False):
        new = PhrasalConstraint(self.token_ids)
        if stateful:
            new.fulfilled_idx, new.completed = self.fulfilled_idx, self.completed
        return new


class DisjunctiveTrie:
    """A prefix tree of token-id sequences; none may be a prefix of another."""

    def __init__(self, nested_token_ids: list[list[int]], no_subsets: bool = True):
        self.max_height = max(len(ids) for ids in nested_token_ids)
        root: dict = {}
        for ids in nested_token_ids:
            node = root
            for token in ids:
                node = node.setdefault(token, {})
        if no_subsets and _count_leaves(root) != len(nested_token_ids):
            raise ConfigError(f"No list in nested_token_ids may be a prefix of another, but got {nested_token_ids}.")
        self.trie = root

    def next_tokens(self, current_seq) -> list[int]:
        node = self.trie
        for token in current_seq:
            node = node[token]
        return list(node)

    def reached_leaf(self, current_seq) -> bool:
        return len(self.next_tokens(current_seq)) == 0


def _count_leaves(node: dict) -> int:
    return 1 if not node else sum(_count_leaves(child) for child in node.values())


class DisjunctiveConstraint(Constraint):
    """The output must contain one of the phrases in `nested_token_ids`."""

    def __init__(self, nested_token_ids: list[list[int]]):
        if not isinstance(nested_token_ids, list) or len(nested_token_ids) == 0:
            raise ConfigError(f"nested_token_ids has to be a non-empty list of lists, but is {nested_token_ids!r}.")
        for ids in nested_token_ids:
            _check_ids("each list of nested_token_ids", ids)
        self.trie = DisjunctiveTrie(nested_token_ids)
        self.token_ids = nested_token_ids
        self.seqlen = self.trie.max_height
        self.current_seq: list[int] = []
        self.completed = False

    def advance(self):
        tokens = self.trie.next_tokens(self.current_seq)
        return tokens or None

    def does_advance(self, token_id: int) -> bool:
        _check_int(token_id)
        return token_id in self.trie.next_tokens(self.current_seq)

    def update(self, token_id: int):
        _check_int(token_id)
        stepped = self.does_advance(token_id)
        if stepped:
            self.current_seq.append(token_id)
        else:
            self.reset()
        self.completed = self.trie.reached_leaf(self.current_seq)
        return stepped, self.completed, not stepped

    def reset(self):
        self.completed = False
        self.current_seq = []

    def remaining(self) -> int:
        return 0 if self.completed else self.seqlen - len(self.current_seq)

    def copy(self, stateful: bool = False):
        new = DisjunctiveConstraint(self.token_ids)
        if stateful:
            new.current_seq, new.completed = self.current_seq, self.completed  # shared on purpose (see module doc)
        return new


class ConstraintListState:
    """Progress of one hypothesis through a list of constraints: done, in progress (at most one), pending."""

    def __init__(self, constraints: list[Constraint]):
        self.constraints = constraints
        self.max_seqlen = max(c.seqlen for c in constraints)
        self.n_constraints = len(constraints)
        self.completed = False
        self.init_state()

    def init_state(self):
        self.complete_constraints: list[Constraint] = []
        self.inprogress_constraint: Constraint | None = None
        self.pending_constraints = [c.copy(stateful=False) for c in self.constraints]

    def get_bank(self) -> int:
        """A progress score: max_seqlen per completed constraint plus the tokens matched of the current one."""
        partial = self.max_seqlen - self.inprogress_constraint.remaining() if self.inprogress_constraint else 0
        return len(self.complete_constraints) * self.max_seqlen + partial

    def advance(self):
        """Tokens that would make progress on some constraint, or None."""
        sources = [self.inprogress_constraint] if self.inprogress_constraint is not None else self.pending_constraints
        tokens: list[int] = []
        for constraint in sources:
            step = constraint.advance()
            if isinstance(step, int):
                tokens.append(step)
            elif isinstance(step, list):
                tokens.extend(step)
        return tokens or None

    def reset(self, token_ids):
        self.init_state()
        for token in token_ids or ():
            self.add(token)
            if self.completed:
                break

    def add(self, token_id: int):
        if not isinstance(token_id, int):
            raise TypeError(f"token_id should be an int, but is {token_id!r}.")
        if self.completed:
            return True, False
        if self.inprogress_constraint is not None:
            current = self.inprogress_constraint
            stepped, complete, reset = current.update(token_id)
            if reset:
                self.pending_constraints.append(current.copy(stateful=False))
                self.inprogress_constraint = None
            if complete:
                self.complete_constraints.append(current)
                self.inprogress_constraint = None
                if not self.pending_constraints:
                    self.completed = True
            return complete, stepped
        for i, pending in enumerate(self.pending_constraints):
            if not pending.does_advance(token_id):
                continue
            stepped, complete, _ = pending.update(token_id)
            if complete:
                self.complete_constraints.append(pending)
            else:
                self.inprogress_constraint = pending
            del self.pending_constraints[i]
            if not self.pending_constraints and self.inprogress_constraint is None:
                self.completed = True
            return complete, stepped  # one token advances at most one constraint
        return False, False

    def copy(self, stateful: bool = True):
        new = ConstraintListState(self.constraints)
        if stateful:
            new.complete_constraints = [c.copy(stateful=True) for c in self.complete_constraints]
            if self.inprogress_constraint is not None:
                new.inprogress_constraint = self.inprogress_constraint.copy(stateful=True)
            new.pending_constraints = [c.copy() for c in self.pending_constraints]
        return new

"""Verify a ledger from its entries, checkpoints and public keys alone (no database needed).

Each entry is checked, in order, for: its place in the sequence (gapless from 1), its link to
the entry before (``prev_hash``), its hash against its canonical encoding, the ledger's rules
(kinds, accounts, no overdraft of any account but ``mint``) and, when given, the Merkle
subtrees stored with it. Every checkpoint's root is recomputed from the entry hashes and its
Ed25519 signature checked; balances and the head, when given, against a replay of the entries.
The report names the first bad entry.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from services.ledger import merkle
from services.ledger.canonical import GENESIS, MINT, Checkpoint, Entry, entry_hash, entry_problem, is_private
from services.ledger.keys import checkpoint_message, verify_signature

MAX_PROBLEMS = 100


@dataclass(frozen=True)
class Problem:
    reason: str
    seq: int | None = None  # the entry it is about
    tree_size: int | None = None  # the checkpoint it is about
    account: str | None = None

    def __str__(self) -> str:
        where = (
            f"entry {self.seq}"
            if self.seq is not None
            else f"checkpoint {self.tree_size}"
            if self.tree_size is not None
            else f"account {self.account}"
            if self.account is not None
            else "ledger"
        )
        return f"{where}: {self.reason}"


@dataclass
class Report:
    territory: str
    entries: int = 0
    checkpoints: int = 0
    balances: int | None = None
    problems: list[Problem] = field(default_factory=list)
    more_problems: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_bad_entry(self) -> int | None:
        seqs = [p.seq for p in self.problems if p.seq is not None]
        return min(seqs) if seqs else None

    @property
    def first_problem(self) -> Problem | None:
        bad = self.first_bad_entry
        if bad is not None:
            return next(p for p in self.problems if p.seq == bad)
        return self.problems[0] if self.problems else None


class Verifier:
    """Feed entries in ``seq`` order with :meth:`add`, then call :meth:`finish`."""

    def __init__(self, territory: str, checkpoints: Iterable[Checkpoint], keys: dict[str, Ed25519PublicKey]) -> None:
        self.report = Report(territory)
        self.territory = territory
        self.frontier = merkle.Frontier()
        self.prev = GENESIS
        self.expected = 1
        self.totals: dict[str, list[int]] = {}
        self.checkpoints = sorted(checkpoints, key=lambda c: c.tree_size)
        self._next_cp = 0
        self.report.checkpoints = len(self.checkpoints)
        seen: set[int] = set()
        for cp in self.checkpoints:
            if cp.tree_size in seen:
                self.problem(f"appears twice (tree size {cp.tree_size})", tree_size=cp.tree_size)
            seen.add(cp.tree_size)
            key = keys.get(cp.key_id)
            if key is None:
                self.problem(f"signed by unknown key {cp.key_id!r}", tree_size=cp.tree_size)
            elif not verify_signature(
                key, cp.signature, checkpoint_message(territory, cp.tree_size, cp.root, cp.created_at)
            ):
                self.problem(f"bad signature (key {cp.key_id})", tree_size=cp.tree_size)
        self._skip_empty_checkpoints()

    def problem(self, reason: str, **where: object) -> None:
        if len(self.report.problems) < MAX_PROBLEMS:
            self.report.problems.append(Problem(reason, **where))  # type: ignore[arg-type]
        else:
            self.report.more_problems += 1

    def _skip_empty_checkpoints(self) -> None:
        while self._next_cp < len(self.checkpoints) and self.checkpoints[self._next_cp].tree_size < 1:
            self.problem("covers no entries", tree_size=self.checkpoints[self._next_cp].tree_size)
            self._next_cp += 1

    def add(self, e: Entry) -> None:
        seq = e.seq
        if seq != self.expected:
            if seq > self.expected:
                self.problem(f"missing (the next entry found is {seq})", seq=self.expected)
            else:
                self.problem(f"out of order or repeated (expected entry {self.expected})", seq=seq)
            self.expected = seq
        if e.prev_hash != self.prev:
            self.problem("prev_hash does not match the hash of the entry before it", seq=seq)
        if entry_hash(self.territory, e) != e.entry_hash:
            self.problem("entry_hash does not match the entry's contents", seq=seq)
        rule = entry_problem(e.kind, e.debit, e.credit, e.amount, e.xp, e.ref_type, e.ref_id, e.memo)
        if rule:
            self.problem(f"breaks a ledger rule: {rule}", seq=seq)
        totals = self.totals
        debit = totals.get(e.debit)
        if debit is None:
            debit = totals[e.debit] = [0, 0]
        credit = totals.get(e.credit)
        if credit is None:
            credit = totals[e.credit] = [0, 0]
        debit[0] -= e.amount
        debit[1] -= e.xp
        credit[0] += e.amount
        credit[1] += e.xp
        if (debit[0] < 0 or debit[1] < 0) and e.debit != MINT:
            self.problem(f"overdraws account {e.debit}", seq=seq)
        done = self.frontier.push(merkle.leaf_hash(e.entry_hash))
        if e.subtrees is not None and e.subtrees != done:
            self.problem("stored Merkle subtree hashes are wrong (proofs through it fail)", seq=seq)
        self.prev = e.entry_hash
        self.expected = seq + 1
        self.report.entries += 1
        cps = self.checkpoints
        while self._next_cp < len(cps) and cps[self._next_cp].tree_size == self.frontier.size:
            cp = cps[self._next_cp]
            if cp.root != self.frontier.root():
                self.problem("root does not match the entries it covers", tree_size=cp.tree_size)
            self._next_cp += 1

    def finish(
        self,
        *,
        balances: Iterable[tuple[str, int, int]] | None = None,
        head: tuple[int, bytes] | None = None,
        private_left_out: bool = False,
    ) -> Report:
        """Close the report; ``balances`` (account, tokens, xp) and ``head`` (seq, hash) as stored.
        ``private_left_out``: the balances are an export's public ones (players' balances are
        left out, not missing); every balance given is still checked against the entries."""
        count = self.frontier.size
        for cp in self.checkpoints[self._next_cp :]:
            if cp.tree_size > count:
                self.problem(
                    f"missing (checkpoint {cp.tree_size} covers {cp.tree_size} entries, found {count})", seq=count + 1
                )
                break
        if head is not None:
            size, digest = head
            if size > count:
                self.problem(f"missing (the head records {size} entries, found {count})", seq=count + 1)
            elif size < count:
                self.problem(f"the head records {size} entries but {count} exist", seq=size + 1)
            elif count and digest != self.prev:
                self.problem("the head's hash is not this entry's hash", seq=count)
        if balances is not None:
            stored = 0
            seen = set()
            for account, tokens, xp in balances:
                stored += 1
                seen.add(account)
                want = self.totals.get(account, [0, 0])
                if [tokens, xp] != want:
                    self.problem(
                        f"balance is {tokens} tokens / {xp} XP; the entries add up to {want[0]} / {want[1]}",
                        account=account,
                    )
            for account, want in self.totals.items():
                if account not in seen and want != [0, 0] and not (private_left_out and is_private(account)):
                    self.problem(f"has no balance row; the entries add up to {want[0]} / {want[1]}", account=account)
            self.report.balances = stored
        return self.report


def verify(
    territory: str,
    entries: Iterable[Entry],
    checkpoints: Iterable[Checkpoint],
    keys: dict[str, Ed25519PublicKey],
    *,
    balances: Iterable[tuple[str, int, int]] | None = None,
    head: tuple[int, bytes] | None = None,
) -> Report:
    v = Verifier(territory, checkpoints, keys)
    for e in entries:
        v.add(e)
    return v.finish(balances=balances, head=head)

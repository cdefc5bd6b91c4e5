"""The floor every stage's processes share: a pool of worker processes that fails, rather than hangs, when
one of its workers is killed (``workerpool``).  It imports nothing of ours, so any package may use it."""

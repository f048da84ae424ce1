"""`python -m tests.fake_cli ARGS`: the real `semsearch` command with the fake embedder (no torch).

For tests that need real processes (concurrent writers, kills). SEMSEARCH_TEST_ENCODE_SLEEP=S
makes every encode call sleep S seconds first, so a writer holds its lock long enough to be seen.
"""

import os
import time

import semsearch.embed
from semsearch.cli import main
from tests.conftest import FakeEmbedder


class _Slow(FakeEmbedder):
    def encode(self, texts, *, progress=False):
        time.sleep(float(os.environ.get("SEMSEARCH_TEST_ENCODE_SLEEP", "0")))
        return super().encode(texts, progress=progress)


semsearch.embed.make_embedder = lambda model=None, backend="auto": _Slow()
semsearch.embed.query_embedder_for = lambda model, fingerprint: _Slow()

if __name__ == "__main__":
    main()

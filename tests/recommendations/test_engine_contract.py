"""Every engine keeps the one contract serving relies on (``recommendations.engines.Engine``)."""

import json

import numpy as np
import pytest

from modelstore.bundles import KINDS
from recommendations.engines import CBEngine, CFEngine, Engine
from recommendations.serving.loading import ENGINES
from tests import factories


class EngineContract:
    """Tests every engine must pass; a subclass says how to build its engine and what it counts."""

    engine_class: type
    kind: str
    kind_counts: set[str]

    def arrays(self, n_items):
        """Return a valid array set of this kind with ``n_items`` items."""
        raise NotImplementedError

    def engine(self, n_items=12):
        return self.engine_class(self.arrays(n_items))

    def test_is_an_engine(self):
        assert isinstance(self.engine(), Engine)

    def test_serves_the_kind_it_is_registered_for(self):
        assert [kind for kind, engine in ENGINES.items() if engine is self.engine_class] == [self.kind]

    def test_counts_its_items(self):
        arrays = self.arrays(12)
        assert self.engine_class(arrays).n_items == len(arrays["item_ids"]) == 12

    def test_describes_its_counts_as_plain_integers(self):
        counts = self.engine().describe_counts()
        assert set(counts) == {"n_items", *self.kind_counts}
        assert counts["n_items"] == 12
        assert all(type(value) is int and value > 0 for value in counts.values())
        assert json.loads(json.dumps(counts)) == counts

    def test_warm_up_changes_no_answer(self):
        cold, warm = self.engine(), self.engine()
        warm.warm_up()
        assert self.first_answer(warm).as_pairs() == self.first_answer(cold).as_pairs()

    def test_warm_up_works_on_memory_mapped_arrays(self, tmp_path):
        mapped = {}
        for name, values in self.arrays(12).items():
            np.save(tmp_path / f"{name}.npy", values)
            mapped[name] = np.load(tmp_path / f"{name}.npy", mmap_mode="r")
        engine = self.engine_class(mapped)
        engine.warm_up()
        assert engine.describe_counts() == self.engine().describe_counts()


class TestCFEngine(EngineContract):
    engine_class = CFEngine
    kind = "cf"
    kind_counts = {"n_users", "n_factors"}

    def arrays(self, n_items):
        return factories.cf_array_set(n_items=n_items)

    def first_answer(self, engine):
        return engine.recommend(str(engine.users.ids[0]), 5)


class TestCBEngine(EngineContract):
    engine_class = CBEngine
    kind = "cb"
    kind_counts = {"n_dimensions"}

    def arrays(self, n_items):
        return factories.cb_array_set(n_items=n_items)

    def first_answer(self, engine):
        return engine.similar_items(str(engine.items.ids[0]), 5)


def test_every_bundle_kind_has_an_engine():
    assert set(ENGINES) == set(KINDS)
    assert all(isinstance(engine, type) for engine in ENGINES.values())


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_has_a_contract_test(kind):
    assert kind in {contract.kind for contract in EngineContract.__subclasses__()}

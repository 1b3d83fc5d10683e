"""Training reads the KG tensors straight from the dataset; they must equal what a loaded store exports."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from kerec.data import Dataset, load_dataset
from kerec.data.synth import SynthConfig, synthesize
from kerec.kg import MemoryStore, build_ckg
from kerec.kg.ckg import ckg_tensors


def _same(a, b) -> None:  # noqa: ANN001 - two CKGTensors
    assert a.relations == b.relations
    assert (a.num_items, a.num_entities, a.num_users) == (b.num_items, b.num_entities, b.num_users)
    assert torch.equal(a.edge_index, b.edge_index) and torch.equal(a.edge_type, b.edge_type)


def _store_export(ds: Dataset, **kw: bool):  # noqa: ANN202
    store = MemoryStore()
    store.load(build_ckg(ds), progress=False)
    return store.to_tensors(**kw)


@pytest.mark.parametrize("add_inverse", [True, False])
def test_equal_to_the_store_export_with_item_and_user_attributes_and_social_links(tiny: Dataset,
                                                                                 add_inverse: bool) -> None:
    assert len(tiny.social) and tiny.attributes("user") and tiny.attributes("item")  # every kind of fact is here
    _same(ckg_tensors(tiny, add_inverse=add_inverse), _store_export(tiny, add_inverse=add_inverse))


def test_equal_to_the_store_export_on_ml100k_and_generated_data(tmp_path: Path) -> None:
    ml = load_dataset(None).with_linked_items_only()
    _same(ckg_tensors(ml), _store_export(ml))
    synth = load_dataset(str(synthesize(SynthConfig(users=60, items=120, interactions=900, triples=400), tmp_path / "s").directory))
    _same(ckg_tensors(synth), _store_export(synth))


def test_attribute_value_colliding_with_an_entity_is_refused_as_the_store_refuses(tiny: Dataset) -> None:
    from dataclasses import replace

    from kerec.data.idmap import IdMap

    key = f"{tiny.attributes('item')[0].field}={tiny.attributes('item')[0].value}"
    clash = replace(tiny, entities=IdMap("entity", (*tiny.entities.ids, key)))
    with pytest.raises(ValueError, match="collides with a KG entity id"):
        build_ckg(clash)
    with pytest.raises(ValueError, match="collides with a KG entity id"):
        ckg_tensors(clash)

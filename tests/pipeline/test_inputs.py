"""The methods text of the feature spaces: the options a run used, its builders' defaults where
the config leaves an option out."""

from __future__ import annotations

from types import SimpleNamespace

from brainalign.features.spaces import _REGISTRY, register_feature_space
from brainalign.pipeline.config import FeaturesConfig
from brainalign.pipeline.inputs import features_methods


def _methods(**features) -> str:
    (text,) = features_methods(SimpleNamespace(features=FeaturesConfig(**features)))
    return text


def test_features_methods_read_the_builders_defaults():
    spaces = ["mpnet", "mpnet_nouns", "multihot"]
    text = _methods(spaces=spaces)
    assert "mpnet_nouns tagged by spaCy" in text and "over the data's categories" in text
    options = {"mpnet_nouns": {"tagger": "nltk"}, "multihot": {"columns": "coco91"}}
    text = _methods(spaces=spaces, options=options)
    assert "mpnet_nouns tagged by NLTK" in text and "91 COCO category ids" in text
    # a builder whose default changes changes the text: the default is not written twice
    entry = _REGISTRY["mpnet_nouns"]

    def nltk_nouns(stimuli, tagger="nltk"):
        return entry.func(stimuli, tagger=tagger)

    register_feature_space("mpnet_nouns", nltk_nouns, replace=True, needs=entry.needs)
    try:
        assert "mpnet_nouns tagged by NLTK" in _methods(spaces=spaces)
    finally:
        _REGISTRY["mpnet_nouns"] = entry

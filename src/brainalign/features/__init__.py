"""Stimulus features: caption embeddings, the paper's control feature spaces, vision activations.

>>> enc = SentenceEncoder("all-mpnet-base-v2")            # offline, from installed packages
>>> E = caption_embeddings(stim.captions, enc)            # (n_images, 768), mean over captions
>>> F = feature_space("mpnet_nouns", stim)                # any registered space, cached
"""

from brainalign.features.cache import EmbeddingStore, FeatureSpaceCache
from brainalign.features.labels import label_captions, label_stimuli, label_word_vectors
from brainalign.features.language_layers import (  # registers the <encoder>@<layer> spaces
    caption_layer_embeddings,
    encode_layers,
    layer_space_names,
)
from brainalign.features.sentence import (
    MPNET_SHA256,
    SentenceEncoder,
    caption_embeddings,
    embed_texts,
    mpnet_folder,
    packaged_models,
    resolve_model,
)
from brainalign.features.spaces import (
    FeatureSpace,
    describe_feature_spaces,
    feature_space,
    feature_space_defaults,
    feature_space_needs,
    feature_space_options,
    list_feature_spaces,
    register_feature_space,
    scramble_captions,
)
from brainalign.features.vision import Preprocess, VisionModel, activations, load_vision_model
from brainalign.features.words import (
    CATEGORY_FIXES,
    POS_TAGS,
    WordVectors,
    category_label,
    category_words,
    load_word_vectors,
    pos_tag,
    tokenize,
)

__all__ = [
    "CATEGORY_FIXES",
    "EmbeddingStore",
    "FeatureSpace",
    "FeatureSpaceCache",
    "MPNET_SHA256",
    "POS_TAGS",
    "Preprocess",
    "VisionModel",
    "activations",
    "label_captions",
    "label_stimuli",
    "label_word_vectors",
    "layer_space_names",
    "load_vision_model",
    "SentenceEncoder",
    "WordVectors",
    "caption_embeddings",
    "caption_layer_embeddings",
    "category_label",
    "category_words",
    "describe_feature_spaces",
    "embed_texts",
    "encode_layers",
    "feature_space",
    "feature_space_defaults",
    "feature_space_options",
    "feature_space_needs",
    "list_feature_spaces",
    "load_word_vectors",
    "mpnet_folder",
    "packaged_models",
    "pos_tag",
    "register_feature_space",
    "resolve_model",
    "scramble_captions",
    "tokenize",
]

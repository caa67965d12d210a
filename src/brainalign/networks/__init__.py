"""Image→LLM networks: BLT-vNet, training toward caption embeddings, activations, model zoo.

The paper's fourth result (Doerig et al. 2025, Fig. 4; paper_methods §7): recurrent convolutional
networks trained to map images to the MPNet embedding of their captions, their category-trained
controls, and their comparison with other vision models by ROI RSA.

>>> import brainalign as ba
>>> net = ba.networks.BLTNet(n_outputs=768, width=1 / 16, timesteps=2, image_size=64)
>>> len(net.layer_names)
20
"""

from brainalign.networks.activations import activations, load_activations
from brainalign.networks.augment import preprocess_images
from brainalign.networks.blt import BLTNet, half_vnet_channels, layer_name
from brainalign.networks.checkpoint import latest_checkpoint, load_network, save_checkpoint
from brainalign.networks.compare import Comparison, compare_models
from brainalign.networks.data import (
    ImageData,
    from_arrays,
    from_coco,
    from_hdf5,
    from_nsd,
    from_scenes,
    from_stimuli,
)
from brainalign.networks.layers import layer_rdms, network_layers
from brainalign.networks.leakage import ImageIds, check_disjoint, nsd_images
from brainalign.networks.train import TrainResult, evaluate, predict, train
from brainalign.networks.transfer import linear_readout, transfer_readout
from brainalign.networks.zoo import ZooModel, list_models, model_features, register_model

__all__ = [
    "BLTNet",
    "Comparison",
    "ZooModel",
    "compare_models",
    "linear_readout",
    "list_models",
    "model_features",
    "register_model",
    "transfer_readout",
    "ImageData",
    "ImageIds",
    "TrainResult",
    "activations",
    "check_disjoint",
    "evaluate",
    "from_arrays",
    "from_coco",
    "from_hdf5",
    "from_nsd",
    "from_scenes",
    "from_stimuli",
    "half_vnet_channels",
    "latest_checkpoint",
    "layer_name",
    "layer_rdms",
    "network_layers",
    "nsd_images",
    "load_activations",
    "load_network",
    "predict",
    "preprocess_images",
    "save_checkpoint",
    "train",
]

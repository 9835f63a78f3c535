"""YAML-buildable modules. Importing this package registers every module in ``MODULES``."""

from mirrordet.nn.modules.attention import CBAM, ECA
from mirrordet.nn.modules.base import BuildContext, check_args, make_divisible
from mirrordet.nn.modules.blocks import C2f, SPPF, Bottleneck
from mirrordet.nn.modules.c3k2 import C3, C3k2
from mirrordet.nn.modules.conv import Conv, DWConv
from mirrordet.nn.modules.cspmirror import CSPMirror
from mirrordet.nn.modules.cspmirror_seed import CSPMirrorSeed
from mirrordet.nn.modules.head_classify import Classify
from mirrordet.nn.modules.head_detect import Detect
from mirrordet.nn.modules.head_segment import Proto, Segment
from mirrordet.nn.modules.layers import Concat, Upsample
from mirrordet.nn.modules.index import Index
from mirrordet.nn.modules.torchvision_backbone import TorchVision
from mirrordet.nn.modules.fpn import FPN
from mirrordet.nn.modules.pan import PAN
from mirrordet.nn.modules.csp_attention import CSPAttn
from mirrordet.nn.modules.head_retina import RetinaHead
from mirrordet.nn.modules.head_fcos import FCOSHead
from mirrordet.nn.modules.head_double import DoubleHeadRCNN
from mirrordet.nn.modules.head_rcnn import RCNNHead
from mirrordet.nn.modules.head_mask_rcnn import MaskRCNNHead
from mirrordet.nn.modules.psa import C2PSA
from mirrordet.nn.modules.c3k2_mirror import C3k2Mirror
from mirrordet.nn.modules.elan import ELAN1, SPPELAN, RepNCSPELAN4
from mirrordet.nn.modules.downsample import AConv, ADown
from mirrordet.nn.modules.cblinear import CBFuse, CBLinear
from mirrordet.nn.modules.scdown import SCDown
from mirrordet.nn.modules.cib import C2fCIB
from mirrordet.nn.modules.area_attention import A2C2f
from mirrordet.nn.modules.psa import PSA
from mirrordet.nn.modules.torch_layers import ConvTranspose2d, Identity, MaxPool2d, ZeroPad2d
from mirrordet.nn.modules.ghost import C3Ghost, GhostBottleneck, GhostConv
from mirrordet.nn.modules.c2 import C2
from mirrordet.nn.modules.spp import SPP
from mirrordet.nn.modules.resnet_layer import ResNetLayer

__all__ = [
    "CBAM", "ECA", "BuildContext", "check_args", "make_divisible", "C2f", "SPPF", "Bottleneck", "Conv",
    "DWConv", "CSPMirror", "CSPMirrorSeed", "Classify", "Detect", "Concat", "Upsample", "Index", "TorchVision",
    "FPN", "PAN", "CSPAttn", "RetinaHead", "FCOSHead", "DoubleHeadRCNN", "RCNNHead", "C3", "C3k2", "C2PSA", "C3k2Mirror",
    "ELAN1", "SPPELAN", "RepNCSPELAN4", "AConv", "ADown", "CBFuse", "CBLinear", "SCDown", "C2fCIB", "A2C2f", "PSA",
    "ConvTranspose2d", "Identity", "MaxPool2d", "ZeroPad2d", "C3Ghost", "GhostBottleneck", "GhostConv", "C2", "SPP",
    "ResNetLayer", "Proto", "Segment", "MaskRCNNHead",
]

"""Neural networks for audio: ``nn.Module``s that know tensors, never files or datasets.

One module per family, in course order; this package re-exports their public names.

- ``cnn``: shape arithmetic (``conv_output_length``, ``receptive_field``, ``count_parameters``),
  ``RawWaveformCNN``, ``LogMelCNN`` (05, 06)
- ``tf_cnn``: time-frequency blocks and ``FullyConvClassifier`` (07)
- ``autoencoder``: ``ConvAutoencoder`` (05, 10)
- ``temporal``: RNN/TCN/Transformer classifiers, attention pooling, CTC, streaming (09)
- ``kws``: the depthwise-separable keyword spotter ``DSCNN`` (12)
- ``gnn``: torch-geometric graph classifiers (08)
"""

from course_lib.models.autoencoder import ConvAutoencoder
from course_lib.models.kws import DSCNN, separable_block_parameters
from course_lib.models.cnn import (
    ConvBlock1d,
    ConvBlock2d,
    LogMelCNN,
    RawWaveformCNN,
    article_cnn_fixed,
    conv_output_length,
    stack_output_length,
    count_parameters,
    receptive_field,
)
from course_lib.models.temporal import (
    AttentionPooling,
    CausalConv1d,
    CTCModel,
    FrameTagger,
    PositionalEncoding,
    RNNClassifier,
    StreamingTCN,
    TCN,
    TCNClassifier,
    TransformerClassifier,
    ctc_loss,
    greedy_ctc_decode,
    lengths_to_mask,
    stream_process,
)
from course_lib.models.tf_cnn import (
    FrequencyAwareConv,
    FullyConvClassifier,
    MultiScaleBlock,
    TimeFrequencySeparableBlock,
    frequency_position,
)

from course_lib.models import autoencoder, cnn, kws, temporal, tf_cnn

# The graph classifiers load on first use: importing torch-geometric takes seconds, and only
# notebook 08 needs it (``from course_lib.models import GCNClassifier`` still works).
_GNN_NAMES = ("ChebNetClassifier", "GATClassifier", "GCNClassifier", "GraphClassifier")


def __getattr__(name: str):
    if name == "gnn" or name in _GNN_NAMES:
        import importlib

        gnn = importlib.import_module("course_lib.models.gnn")
        return gnn if name == "gnn" else getattr(gnn, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# Each family module lists its public names once; the package re-exports exactly those.
__all__ = [*cnn.__all__, *tf_cnn.__all__, *autoencoder.__all__, *temporal.__all__, *kws.__all__,
           *_GNN_NAMES]

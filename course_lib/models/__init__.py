"""Neural networks for audio: ``nn.Module``s that know tensors, never files or datasets.

One module per family, in course order; this package re-exports their public names.

- ``cnn``: shape arithmetic (``conv_output_length``, ``receptive_field``, ``count_parameters``),
  ``RawWaveformCNN``, ``LogMelCNN`` (05, 06)
- ``tf_cnn``: time-frequency blocks and ``FullyConvClassifier`` (07)
- ``autoencoder``: ``ConvAutoencoder`` (05, 10)
"""

from course_lib.models.autoencoder import ConvAutoencoder
from course_lib.models.cnn import (
    ConvBlock1d,
    ConvBlock2d,
    LogMelCNN,
    RawWaveformCNN,
    article_cnn_fixed,
    conv_output_length,
    count_parameters,
    receptive_field,
)
from course_lib.models.tf_cnn import (
    FrequencyAwareConv,
    FullyConvClassifier,
    MultiScaleBlock,
    TimeFrequencySeparableBlock,
    frequency_position,
)

__all__ = [
    # cnn
    "conv_output_length",
    "receptive_field",
    "count_parameters",
    "article_cnn_fixed",
    "ConvBlock1d",
    "ConvBlock2d",
    "RawWaveformCNN",
    "LogMelCNN",
    # tf_cnn
    "TimeFrequencySeparableBlock",
    "MultiScaleBlock",
    "FrequencyAwareConv",
    "FullyConvClassifier",
    "frequency_position",
    # autoencoder
    "ConvAutoencoder",
]

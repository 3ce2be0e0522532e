"""course_lib — the tested library behind "Everything is a mapping": neural networks for audio.

One module per part of the course (see ``docs/DEVELOPING.md``): ``runtime`` (profile, device,
seeds), ``audio`` (I/O), ``dsp`` (Part I mappings from scratch), ``features`` (the same on the
device), ``data`` (datasets), ``models``, ``graphs``, ``train``, ``metrics``, ``ssl`` (learning
without labels), ``explain`` (attribution maps and their sanity checks), the task modules ``kws``,
``asr``, ``emotion``, ``mir``, ``music``, ``style``, ``vocoder``, ``deploy`` and ``distributed``,
``plot``, ``checks`` (exercise checks), ``assignments`` (student copies) and ``grade`` (the autograder).
"""

from course_lib._meta import REPOSITORY_URL, RELEASE, __version__

__all__ = ["REPOSITORY_URL", "RELEASE", "__version__"]

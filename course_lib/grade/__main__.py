"""``python -m course_lib.grade SUBMISSIONS_DIR --out grades.csv``: see :mod:`course_lib.grade`."""

import sys

from course_lib.grade import main

sys.exit(main())

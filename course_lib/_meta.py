"""Facts about the course that more than one place needs; each is stated here only."""

__version__ = "0.1.0"

# The public repository the Colab setup cell installs from. Kept here and nowhere else:
# pyproject.toml's [project.urls] and every notebook's setup cell are checked against it.
REPOSITORY_URL = "https://github.com/everything-is-a-mapping/audio-nn-course"

# Colab installs a tagged release, never the moving head of a branch.
RELEASE = f"v{__version__}"

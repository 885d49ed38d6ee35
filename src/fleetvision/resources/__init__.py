"""What the package ships besides code, read through :mod:`importlib.resources`.

The files live in this folder, so a wheel (``pip install .``, the Dockerfile) carries them and the
package works from any directory:

* ``local.yaml``: the default profile (``load_config()`` without a file). ``conf/local.yaml`` is a
  copy for users to read and copy; ``tests/test_packaged_resources.py`` keeps the two equal.
* ``taxonomy.yaml``: the shot classes and body types (``load_taxonomy()``); ``conf/taxonomy.yaml``
  is its copy, kept equal the same way.
* ``starter/``: the starter models, ``<task>/head.keras`` + ``backbone.json`` (or ``model.keras``)
  + ``metrics.json``. In the source tree it is a link to ``models/starter`` (where the training job
  writes them); the wheel build copies whatever files are there.

Each is edited in one place: this folder for the YAML files (copy the result to ``conf/``), and
``models/starter`` for the models.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

DEFAULT_PROFILE = "local.yaml"
TAXONOMY = "taxonomy.yaml"
STARTER_MODELS = "starter"


def resource_path(name: str) -> Path:
    """The file system path of a shipped file or folder, e.g. ``resource_path("taxonomy.yaml")``.

    The package is installed as plain files (a wheel or an editable install), never run from a zip,
    so its resources are paths that Keras, YAML and MLflow can open directly.

    Args:
        name: A name in this folder (``local.yaml``, ``taxonomy.yaml``, ``starter``).

    Returns:
        The path; whether it exists is for the caller to check.

    Raises:
        RuntimeError: The package is not installed as files (a zip import).
    """
    root = files(__name__)
    if not isinstance(root, Path):
        raise RuntimeError(f"fleetvision's resources are not files on disk ({root!r}); install it from a wheel")
    return root / name

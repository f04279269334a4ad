"""nbval runs these notebooks in quick mode (``make test``): small data, one epoch, the offline teacher.

The kernels nbval starts inherit this process's environment, so the defaults set here reach them;
``KDVIZ_QUICK=0 pytest --nbval notebooks`` runs the full recipes instead (a GPU and the hub).
"""

import os

os.environ.setdefault("KDVIZ_QUICK", "1")
# progress bars are noise in recorded outputs (tqdm, datasets, transformers' weight loading)
for name in ("TQDM_DISABLE", "HF_DATASETS_DISABLE_PROGRESS_BARS", "HF_HUB_DISABLE_PROGRESS_BARS"):
    os.environ.setdefault(name, "1")
